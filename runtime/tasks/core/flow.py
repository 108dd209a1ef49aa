"""io.kestra.plugin.core.flow: the flowable tasks, Pause, Sleep and Subflow."""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import msgspec

from runtime.model._common import Duration, Spec, is_template
from runtime.model._inputs import Input
from runtime.model._task import ChildKind, Task
from runtime.tasks._api import RunContext, TaskFailedError
from runtime.tasks._registry import task_type

_LIST = ChildKind.LIST


def _non_empty(tasks: list[Task], field: str = "tasks") -> list[tuple[str, str]]:
    return [] if tasks else [(field, "must list at least one task")]


def _dynamic_duration(value: str | None, field: str) -> list[tuple[str, str]]:
    """A duration that may be an expression (rendered at run time); a literal must parse now."""
    if isinstance(value, str) and not is_template(value):
        try:
            Duration.parse(value)
        except ValueError as exc:
            return [(field, str(exc))]
    return []


class FlowableTask(Task, kw_only=True):
    """A task that runs other tasks. ``errors`` run when a child fails; ``finally`` always."""

    errors: list[Task] = msgspec.field(default_factory=list)
    finally_: list[Task] = msgspec.field(default_factory=list, name="finally")

    flowable = True
    child_fields: ClassVar[dict[str, ChildKind]] = {"errors": _LIST, "finally": _LIST}


class _WithTasks(FlowableTask, kw_only=True):
    tasks: list[Task] = msgspec.field(default_factory=list)

    child_fields: ClassVar[dict[str, ChildKind]] = {"tasks": _LIST, **FlowableTask.child_fields}

    def problems(self) -> list[tuple[str, str]]:
        return _non_empty(self.tasks)


@task_type(
    "io.kestra.plugin.core.flow.Sequential", "io.kestra.core.tasks.flows.Sequential", "Sequential"
)
class Sequential(_WithTasks, kw_only=True):
    """Runs ``tasks`` one after the other."""


@task_type("io.kestra.plugin.core.flow.Parallel", "io.kestra.core.tasks.flows.Parallel", "Parallel")
class Parallel(_WithTasks, kw_only=True):
    """Runs ``tasks`` at the same time, at most ``concurrent`` at once (0: no limit)."""

    concurrent: int = 0

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        if self.concurrent < 0:
            found.append(("concurrent", f"must be 0 or more, found {self.concurrent}"))
        return found


@task_type(
    "io.kestra.plugin.core.flow.AllowFailure",
    "io.kestra.core.tasks.flows.AllowFailure",
    "AllowFailure",
)
class AllowFailure(_WithTasks, kw_only=True):
    """Runs ``tasks``; a failure among them ends this task in WARNING instead of FAILED."""


@task_type(
    "io.kestra.plugin.core.flow.WorkingDirectory",
    "io.kestra.core.tasks.flows.WorkingDirectory",
    "io.kestra.core.tasks.flows.Worker",
    "WorkingDirectory",
)
class WorkingDirectory(_WithTasks, kw_only=True):
    """Runs ``tasks`` one after the other in one shared directory.

    ``inputFiles`` (a map of file name to content, or an expression giving one; content
    that renders to a ``kestra://`` URI is that stored file) are written into it before the
    first task starts. Once the tasks ended (even failed or killed), files matching the
    ``outputFiles`` glob patterns go to internal storage and become the output
    ``outputFiles`` (name to URI); then the directory is removed, and ``errors`` and
    ``finally`` run, each task in a directory of its own (as in Kestra, where the worker
    runs only ``tasks`` in the shared directory).

    ``namespaceFiles`` and ``cache`` are Kestra features Tiercel does not have: a flow that
    sets them is refused rather than run without them (``namespaceFiles: {enabled: false}``,
    which asks for nothing, is accepted).
    """

    cache: dict[str, Any] | None = None
    namespace_files: dict[str, Any] | None = None
    input_files: dict[str, str] | str | None = None
    output_files: list[str] | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        if self.namespace_files is not None and self.namespace_files.get("enabled") is not False:
            found.append(
                (
                    "namespaceFiles",
                    "is not supported by Tiercel (it has no namespace files); "
                    "use inputFiles to put files into the working directory",
                )
            )
        if self.cache is not None:
            found.append(
                (
                    "cache",
                    "is not supported by Tiercel (no working directory cache); "
                    "remove it: every run starts from an empty directory",
                )
            )
        return found


@task_type("io.kestra.plugin.core.flow.ForEach", "ForEach")
class ForEach(_WithTasks, kw_only=True):
    """Runs ``tasks`` once per item of ``values``, ``concurrencyLimit`` at once (0: all)."""

    values: Any = None
    concurrency_limit: int = 1

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        if self.values is None:
            found.append(("values", "is required (a list, or an expression giving one)"))
        if self.concurrency_limit < 0:
            found.append(
                (
                    "concurrencyLimit",
                    f"must be 0 (no limit) or more, found {self.concurrency_limit}",
                )
            )
        return found


@task_type(
    "io.kestra.plugin.core.flow.EachSequential",
    "io.kestra.core.tasks.flows.EachSequential",
    "EachSequential",
)
class EachSequential(_WithTasks, kw_only=True):
    """Runs ``tasks`` once per item of ``value``, one after the other (deprecated: ForEach)."""

    value: Any = None

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        if self.value is None:
            found.append(("value", "is required (a list, or an expression giving one)"))
        return found


@task_type(
    "io.kestra.plugin.core.flow.EachParallel",
    "io.kestra.core.tasks.flows.EachParallel",
    "EachParallel",
)
class EachParallel(EachSequential, kw_only=True):
    """Runs ``tasks`` once per item of ``value``, ``concurrent`` at once (0: all)."""

    concurrent: int = 0


@task_type("io.kestra.plugin.core.flow.If", "io.kestra.core.tasks.flows.If", "If")
class If(FlowableTask, kw_only=True):
    """Runs ``then`` when ``condition`` renders truthy, else ``else``."""

    condition: str | bool | int | None = None
    then: list[Task] = msgspec.field(default_factory=list)
    else_: list[Task] = msgspec.field(default_factory=list, name="else")

    child_fields: ClassVar[dict[str, ChildKind]] = {
        "then": _LIST,
        "else": _LIST,
        **FlowableTask.child_fields,
    }

    def problems(self) -> list[tuple[str, str]]:
        found = _non_empty(self.then, "then")
        if self.condition is None:
            found.append(("condition", "is required"))
        return found


@task_type("io.kestra.plugin.core.flow.Switch", "io.kestra.core.tasks.flows.Switch", "Switch")
class Switch(FlowableTask, kw_only=True):
    """Runs the ``cases`` entry matching the rendered ``value``, else ``defaults``."""

    value: str
    cases: dict[str, list[Task]] = msgspec.field(default_factory=dict)
    defaults: list[Task] = msgspec.field(default_factory=list)

    child_fields: ClassVar[dict[str, ChildKind]] = {
        "cases": ChildKind.MAP_OF_LISTS,
        "defaults": _LIST,
        **FlowableTask.child_fields,
    }


class DagTask(Spec, kw_only=True):
    """One node of a Dag: a task and the ids of the tasks it waits for."""

    task: Task
    depends_on: list[str] | None = None


@task_type("io.kestra.plugin.core.flow.Dag", "io.kestra.core.tasks.flows.Dag", "Dag")
class Dag(FlowableTask, kw_only=True):
    """Runs ``tasks`` as soon as the tasks each depends on have succeeded."""

    concurrent: int = 0
    tasks: list[DagTask] = msgspec.field(default_factory=list)

    child_fields: ClassVar[dict[str, ChildKind]] = {
        "tasks": ChildKind.DAG,
        **FlowableTask.child_fields,
    }

    def problems(self) -> list[tuple[str, str]]:
        if not self.tasks:
            return [("tasks", "must list at least one task")]
        ids = [entry.task.id for entry in self.tasks]
        found = [
            (
                f"tasks[{index}].dependsOn",
                f"{dependency!r} is not a task of this Dag (tasks: {', '.join(ids)})",
            )
            for index, entry in enumerate(self.tasks)
            for dependency in entry.depends_on or ()
            if dependency not in ids
        ]
        if not found and (cycle := _find_cycle(self.tasks)):
            found.append(("tasks", f"dependencies form a cycle: {' -> '.join(cycle)}"))
        return found


def _find_cycle(entries: list[DagTask]) -> list[str]:
    graph = {entry.task.id: list(entry.depends_on or ()) for entry in entries}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


class CheckFrequency(Spec, kw_only=True):
    """How often and how long WaitFor checks its condition."""

    max_iterations: int = 100
    max_duration: Duration = msgspec.field(default_factory=lambda: Duration(hours=1))
    interval: Duration = msgspec.field(default_factory=lambda: Duration(seconds=1))


@task_type("io.kestra.plugin.core.flow.WaitFor", "WaitFor")
class WaitFor(_WithTasks, kw_only=True):
    """Runs ``tasks`` again and again until ``condition`` renders truthy."""

    condition: str
    fail_on_max_reached: bool = False
    check_frequency: CheckFrequency = msgspec.field(default_factory=CheckFrequency)

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        if self.check_frequency.max_iterations < 1:
            found.append(("checkFrequency.maxIterations", "must be at least 1"))
        return found


class PauseBehavior(enum.Enum):
    """What a Pause does when its timeout or pauseDuration elapses."""

    RESUME = "RESUME"
    WARN = "WARN"
    FAIL = "FAIL"
    CANCEL = "CANCEL"


@task_type("io.kestra.plugin.core.flow.Pause", "io.kestra.core.tasks.flows.Pause", "Pause")
class Pause(FlowableTask, kw_only=True):
    """Pauses the execution until resumed, or for ``delay``/``pauseDuration``.

    ``timeout`` ends the pause with ``behavior`` (FAIL unless set); ``pauseDuration``
    ends it with ``behavior`` (RESUME unless set). ``onResume`` declares typed inputs a
    resume may carry; they become the task's outputs.
    """

    delay: str | None = None
    pause_duration: str | None = None
    timeout: str | None = None  # type: ignore[assignment]
    behavior: PauseBehavior | None = None
    on_resume: list[Input] = msgspec.field(default_factory=list)
    tasks: list[Task] = msgspec.field(default_factory=list)

    child_fields: ClassVar[dict[str, ChildKind]] = {"tasks": _LIST, **FlowableTask.child_fields}

    def problems(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for name, value in (
            ("delay", self.delay),
            ("pauseDuration", self.pause_duration),
            ("timeout", self.timeout),
        ):
            found += _dynamic_duration(value, name)
        if self.delay is not None and self.pause_duration is not None:
            found.append(("pauseDuration", "set either delay or pauseDuration, not both"))
        return found


@task_type("io.kestra.plugin.core.flow.Sleep", "Sleep")
class Sleep(Task, kw_only=True):
    """Waits ``duration``."""

    effects_outside: ClassVar[bool] = False

    duration: str

    def problems(self) -> list[tuple[str, str]]:
        return _dynamic_duration(self.duration, "duration")

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        try:
            duration = Duration.parse(str(ctx.render(self.duration)))
        except ValueError as exc:
            raise TaskFailedError(f"duration: {exc}") from None
        await ctx.sleep(duration.total_seconds())
        return None


@task_type(
    "io.kestra.plugin.core.flow.Subflow",
    "io.kestra.core.tasks.flows.Subflow",
    "io.kestra.core.tasks.flows.Flow",
    "Subflow",
)
class Subflow(Task, kw_only=True):
    """Starts an execution of another flow, and by default waits for it."""

    namespace: str
    flow_id: str
    revision: int | None = None
    inputs: dict[str, Any] | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None
    wait: bool = True
    transmit_failed: bool = True
    inherit_labels: bool = False
    outputs: dict[str, Any] | None = None
    schedule_date: str | None = None
