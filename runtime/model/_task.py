"""The base of every task spec: the properties all tasks share."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from runtime.model._common import Duration, Spec
from runtime.model._retry import Retry

if TYPE_CHECKING:
    from runtime.tasks._api import RunContext


class LogLevel(enum.Enum):
    """Log levels, as Kestra names them."""

    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class ChildKind(enum.Enum):
    """How a flowable task holds its children in the document."""

    LIST = "list"
    """A list of tasks (``tasks``, ``errors``, ``then``...)."""
    MAP_OF_LISTS = "map"
    """A map from a key to a list of tasks (Switch ``cases``)."""
    DAG = "dag"
    """A list of ``{task, dependsOn}`` entries (Dag ``tasks``)."""


class Task(Spec, kw_only=True):
    """Properties every task has. Subclasses add their own and declare their children.

    ``child_fields`` maps a document key to how it holds child tasks; the parser builds
    those children (and validates them) before the task itself.
    """

    id: str
    type: str
    description: str | None = None
    retry: Retry | None = None
    timeout: Duration | None = None
    disabled: bool = False
    allow_failure: bool = False
    allow_warning: bool = False
    run_if: str | None = None
    log_level: LogLevel | None = None
    log_to_file: bool = False
    worker_group: dict[str, Any] | None = None

    flowable: ClassVar[bool] = False
    child_fields: ClassVar[dict[str, ChildKind]] = {}
    effects_outside: ClassVar[bool] = True
    """Whether an attempt may act outside the execution (a process, a call to another
    system): such an attempt starts only once its start is durable, so a crash never makes
    it run again under the same attempt number. Core tasks whose attempts only compute or
    record in the store say False (their start is not waited for)."""

    def problems(self) -> list[tuple[str, str]]:
        """Problems beyond types, as ``(field, message)``; the parser reports them."""
        return []

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        """Run one attempt of this task and return its outputs (runnable tasks only).

        Raise to fail the attempt (``TaskFailedError`` for an expected failure).
        """
        raise NotImplementedError(f"{type(self).__name__} is not a runnable task")

    def children(self) -> Iterator[tuple[str, Task]]:
        """Every direct child task with the field it sits in (``cases.a``, ``tasks``...)."""
        for name, kind in self.child_fields.items():
            value = getattr(self, _attribute(name))
            if not value:
                continue
            if kind is ChildKind.MAP_OF_LISTS:
                for key, tasks in value.items():
                    for task in tasks:
                        yield f"{name}.{key}", task
            elif kind is ChildKind.DAG:
                for entry in value:
                    yield name, entry.task
            else:
                for task in value:
                    yield name, task

    def walk(self) -> Iterator[Task]:
        """This task and all its descendants, depth first."""
        yield self
        for _, child in self.children():
            yield from child.walk()


def _attribute(document_key: str) -> str:
    """The Python attribute behind a document key (``else`` -> ``else_``)."""
    return document_key + "_" if document_key in ("else", "finally") else document_key


attribute_name = _attribute
