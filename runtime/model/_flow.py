"""The flow: a whole YAML document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from runtime.model._common import Spec
from runtime.model._inputs import Input, InputType
from runtime.model._retry import Retry
from runtime.model._task import Task
from runtime.model._triggers import ConcurrencyBehavior, Trigger


class FlowOutput(Spec, kw_only=True):
    """A flow output: ``value`` is rendered at the end of the execution and typed."""

    id: str
    value: Any
    type: InputType = InputType.STRING
    description: str | None = None
    display_name: str | None = None
    required: bool = True


class Concurrency(Spec, kw_only=True):
    """At most ``limit`` running executions of the flow; ``behavior`` for the next one."""

    limit: int
    behavior: ConcurrencyBehavior = ConcurrencyBehavior.QUEUE


class PluginDefault(Spec, kw_only=True):
    """Default property ``values`` for tasks whose type starts with ``type``.

    ``forced`` defaults override what the task sets; others fill only what it leaves out.
    """

    type: str
    values: dict[str, Any]
    forced: bool = False


class Flow(Spec, kw_only=True):
    """A flow document, validated. Build one with :func:`runtime.parsing.parse_flow`."""

    id: str
    namespace: str
    tasks: list[Task]
    revision: int | None = None
    description: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    inputs: list[Input] = msgspec.field(default_factory=list)
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    errors: list[Task] = msgspec.field(default_factory=list)
    finally_: list[Task] = msgspec.field(default_factory=list, name="finally")
    after_execution: list[Task] = msgspec.field(default_factory=list)
    outputs: list[FlowOutput] = msgspec.field(default_factory=list)
    retry: Retry | None = None
    concurrency: Concurrency | None = None
    triggers: list[Trigger] = msgspec.field(default_factory=list)
    disabled: bool = False
    plugin_defaults: list[PluginDefault] = msgspec.field(default_factory=list)
    source: str | None = None
    """The text the flow was parsed from (not a document key; kept to store revisions)."""

    @property
    def uid(self) -> str:
        """``namespace.id``: what names a flow across namespaces."""
        return f"{self.namespace}.{self.id}"

    def all_tasks(self) -> Iterator[Task]:
        """Every task of the flow, in every branch, depth first."""
        for branch in (self.tasks, self.errors, self.finally_, self.after_execution):
            for task in branch:
                yield from task.walk()

    def find_task(self, task_id: str) -> Task | None:
        """The task with id ``task_id`` anywhere in the flow, or None."""
        for task in self.all_tasks():
            if task.id == task_id:
                return task
        return None
