"""TaskRunActor: one per runnable task run. Each incarnation is one attempt; a retry is a
supervisor restart with the task's retry policy."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors import Actor, ActorRef
from runtime.engine._messages import AttemptBegan, AttemptFinished, LabelsSet, TaskLogged
from runtime.expressions import ExpressionError, RenderHooks
from runtime.model._states import State
from runtime.tasks._api import RunContext, StateStore, TaskFailedError

if TYPE_CHECKING:
    from runtime.engine._services import Services
    from runtime.model import Task

ContextFactory = Callable[[int], dict[str, Any]]
"""Builds the variables of attempt n (1-based)."""


class TaskRunJob:
    """Everything a TaskRunActor needs to run the attempts of one task run."""

    __slots__ = (
        "attempt_base",
        "execution_id",
        "flow_id",
        "hooks",
        "namespace",
        "parent",
        "services",
        "task",
        "task_run_id",
        "value",
        "variables",
        "work_dir",
    )

    def __init__(
        self,
        *,
        task: Task,
        task_run_id: str,
        execution_id: str,
        namespace: str,
        flow_id: str,
        value: str | None,
        attempt_base: int,
        parent: ActorRef[Any],
        services: Services,
        variables: ContextFactory,
        hooks: RenderHooks,
        work_dir: Path | None,
    ) -> None:
        self.task = task
        self.task_run_id = task_run_id
        self.execution_id = execution_id
        self.namespace = namespace
        self.flow_id = flow_id
        self.value = value
        self.attempt_base = attempt_base
        self.parent = parent
        self.services = services
        self.variables = variables
        self.hooks = hooks
        self.work_dir = work_dir


class AttemptContext(RunContext):
    """The run context of one attempt."""

    def __init__(self, job: TaskRunJob, attempt: int) -> None:
        self.job = job
        self.execution_id = job.execution_id
        self.task_run_id = job.task_run_id
        self.task_id = job.task.id
        self.attempt = attempt
        self.namespace = job.namespace
        self.flow_id = job.flow_id
        self.value = job.value
        self.metrics: list[tuple[str, str, float, dict[str, str]]] = []
        self.warned = False
        self._variables: dict[str, Any] | None = None
        self._own_dir: Path | None = None

    @property
    def variables(self) -> dict[str, Any]:
        """The variables expressions of this attempt see."""
        if self._variables is None:
            self._variables = self.job.variables(self.attempt)
        return self._variables

    def render(self, value: Any) -> Any:
        return self.job.services.expressions.render_value(value, self.variables, self.job.hooks)

    def render_text(self, template: str) -> str:
        return self.job.services.expressions.render(template, self.variables, self.job.hooks)

    def render_typed(self, template: str) -> Any:
        return self.job.services.expressions.render_typed(template, self.variables, self.job.hooks)

    def log(self, level: str, message: str) -> None:
        self.job.parent.tell_nowait(
            TaskLogged(self.task_run_id, self.attempt, level.upper(), message)
        )

    def metric(
        self, name: str, kind: str, value: float, tags: Mapping[str, str] | None = None
    ) -> None:
        if kind not in ("counter", "timer"):
            raise ValueError(f"metric type must be counter or timer, got {kind!r}")
        self.metrics.append((name, kind, float(value), dict(tags or {})))

    def warn(self) -> None:
        self.warned = True

    async def sleep(self, seconds: float) -> None:
        await self.job.services.clock.sleep(seconds)

    def working_dir(self) -> Path:
        if self.job.work_dir is not None:
            return self.job.work_dir
        if self._own_dir is None:
            base = self.job.services.data_dir / "work" / self.execution_id
            self._own_dir = base / f"{self.task_run_id}-{self.attempt}"
            self._own_dir.mkdir(parents=True, exist_ok=True)
        return self._own_dir

    async def put_file(self, source: Path, name: str) -> str:
        from runtime.storage import storage_for

        storage = storage_for(self.job.services.data_dir)
        return await storage.put_task_file(
            self.namespace, self.flow_id, self.execution_id, self.task_run_id, name, source
        )

    async def get_file(self, uri: str, target: Path) -> None:
        from runtime.storage import StorageError, storage_for

        storage = storage_for(self.job.services.data_dir)
        try:
            await storage.copy_out(uri, target)
        except StorageError as exc:
            raise TaskFailedError(str(exc)) from None

    def state_store(self) -> StateStore:
        return self.job.services.state_store(self.namespace)

    def set_labels(self, labels: Mapping[str, str]) -> None:
        self.job.parent.tell_nowait(LabelsSet(self.task_run_id, dict(labels)))

    async def resume_execution(self, execution_id: str, inputs: Mapping[str, Any]) -> None:
        await self.job.services.resume_execution(execution_id, dict(inputs))

    def cleanup(self) -> None:
        """Remove this attempt's own working directory."""
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)


def describe_error(error: BaseException) -> str:
    """A one-line reason for a failed attempt, without a traceback for expected failures."""
    if isinstance(error, TaskFailedError | ExpressionError):
        return str(error)
    if isinstance(error, TimeoutError):
        return str(error) or "timed out"
    return f"{type(error).__name__}: {error}"


class TaskRunActor(Actor[object]):
    """Runs one attempt per incarnation and reports it to the ExecutionActor."""

    __slots__ = ("job",)

    def __init__(self, job: TaskRunJob) -> None:
        self.job = job

    async def on_start(self) -> None:
        job = self.job
        attempt = job.attempt_base + self.ref.incarnation + 1
        parent = job.parent
        parent.tell_nowait(AttemptBegan(job.task_run_id, attempt))
        context = AttemptContext(job, attempt)
        timeout = job.task.timeout
        try:
            if timeout is not None:
                try:
                    with job.services.clock.fail_after(timeout.total_seconds()):
                        outputs = await job.task.run(context)
                except TimeoutError:
                    raise TaskFailedError(f"Timeout after {timeout.iso()}") from None
            else:
                outputs = await job.task.run(context)
        except Exception as exc:
            parent.tell_nowait(
                AttemptFinished(
                    job.task_run_id,
                    attempt,
                    State.FAILED,
                    metrics=context.metrics,
                    error=describe_error(exc),
                )
            )
            context.cleanup()
            raise
        state = State.WARNING if context.warned else State.SUCCESS
        parent.tell_nowait(
            AttemptFinished(job.task_run_id, attempt, state, outputs or None, context.metrics)
        )
        context.cleanup()
        self.stop_self()

    async def receive(self, message: object) -> None:
        return None
