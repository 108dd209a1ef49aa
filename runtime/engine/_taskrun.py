"""TaskRunActor: one per runnable task run. Each incarnation is one attempt; a retry is a
supervisor restart with the task's retry policy."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from actors import Actor, ActorRef, Clock
from runtime.engine._messages import AttemptBegan, AttemptFinished, LabelsSet, TaskLogged
from runtime.engine._services import AttemptOutcome, AttemptRequest, AttemptRunner
from runtime.expressions import ExpressionEngine, ExpressionError, RenderHooks
from runtime.model._common import enc_hook
from runtime.model._states import State
from runtime.store._errors import StoreError
from runtime.tasks._api import RunContext, StateStore, TaskFailedError

if TYPE_CHECKING:
    from runtime.engine._services import Services
    from runtime.model import Task

_log = structlog.get_logger("tiercel.tasks")

ContextFactory = Callable[[int], dict[str, Any]]
"""Builds the variables of attempt n (1-based)."""


class TaskRunJob:
    """Everything a TaskRunActor needs to run the attempts of one task run."""

    __slots__ = (
        "attempt_base",
        "execution_id",
        "flow_id",
        "flow_revision",
        "hooks",
        "namespace",
        "parent",
        "reattach",
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
        flow_revision: int = 1,
        reattach: bool = False,
    ) -> None:
        self.task = task
        self.flow_revision = flow_revision
        self.reattach = reattach
        """The first attempt was started by an earlier owner: wait for it, do not begin it."""
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


async def _nothing_to_flush() -> None:
    return None


def describe_error(error: BaseException) -> str:
    """A one-line reason for a failed attempt, without a traceback for expected failures."""
    if isinstance(error, TaskFailedError | ExpressionError):
        return str(error)
    if isinstance(error, TimeoutError):
        return str(error) or "timed out"
    return f"{type(error).__name__}: {error}"


async def run_attempt(
    task: Task,
    context: RunContext,
    clock: Clock,
    metrics: Callable[[], list[tuple[str, str, float, dict[str, str]]]],
) -> AttemptOutcome:
    """Run one attempt of ``task`` under its timeout; any failure becomes a FAILED outcome
    (the same here and on a worker)."""
    timeout = task.timeout
    try:
        if timeout is not None:
            try:
                with clock.fail_after(timeout.total_seconds()):
                    outputs = await task.run(context)
            except TimeoutError:
                raise TaskFailedError(f"Timeout after {timeout.iso()}") from None
        else:
            outputs = await task.run(context)
    except Exception as exc:
        if not isinstance(exc, TaskFailedError | ExpressionError | TimeoutError):
            # A bug in a task type: keep the traceback for whoever debugs it.
            _log.warning("a task raised an unexpected exception", task_id=task.id, exc_info=exc)
        return AttemptOutcome(state=State.FAILED, metrics=metrics(), error=describe_error(exc))
    warned = getattr(context, "warned", False)
    return AttemptOutcome(
        state=State.WARNING if warned else State.SUCCESS,
        outputs=outputs or None,
        metrics=metrics(),
    )


_PRUNABLE = ("outputs", "parents", "parent")
"""Variables that grow with the execution: sent to a worker only if the task reads them."""

_ROOTS: dict[int, tuple[Task, frozenset[str] | None]] = {}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def task_roots(task: Task, expressions: ExpressionEngine) -> frozenset[str] | None:
    """Every top-level variable the task's properties read, or None if that cannot be
    known (then a worker gets them all). Cached per task (per flow revision)."""
    cached = _ROOTS.get(id(task))
    if cached is not None and cached[0] is task:
        return cached[1]
    if not type(task).__module__.startswith("runtime.tasks.core"):
        return None  # a plugin may render text of its own: it gets every variable
    found: set[str] = set()
    roots: frozenset[str] | None = None
    try:
        for text in _strings(msgspec.to_builtins(task, enc_hook=enc_hook)):
            names = expressions.root_names(text)
            if names is None:
                break
            found |= names
        else:
            roots = frozenset(found)
    except (TypeError, msgspec.EncodeError):
        roots = None
    if len(_ROOTS) > 4096:
        _ROOTS.clear()
    _ROOTS[id(task)] = (task, roots)
    return roots


def _request(job: TaskRunJob, attempt: int) -> AttemptRequest:
    error_logs = getattr(job.hooks, "error_logs", None)
    variables = job.variables(attempt)
    roots = task_roots(job.task, job.services.expressions)
    if roots is not None:
        # the outputs of a large execution would make every request O(n): leave out
        # what this task never reads
        variables = {k: v for k, v in variables.items() if k not in _PRUNABLE or k in roots}
    return AttemptRequest(
        execution_id=job.execution_id,
        namespace=job.namespace,
        flow_id=job.flow_id,
        flow_revision=job.flow_revision,
        task_id=job.task.id,
        task_run_id=job.task_run_id,
        value=job.value,
        attempt=attempt,
        variables=variables,
        error_logs=error_logs() if callable(error_logs) else [],
    )


class TaskRunActor(Actor[object]):
    """Runs one attempt per incarnation and reports it to the ExecutionActor."""

    __slots__ = ("job",)

    def __init__(self, job: TaskRunJob) -> None:
        self.job = job

    async def on_start(self) -> None:
        job = self.job
        attempt = job.attempt_base + self.ref.incarnation + 1
        began = AttemptBegan(job.task_run_id, attempt)
        fresh = not (job.reattach and self.ref.incarnation == 0)
        runner = job.services.attempt_runner
        request = _request(job, attempt) if runner is not None and job.work_dir is None else None
        if runner is not None and request is not None and runner.accepts(request):
            if fresh:
                job.parent.tell_nowait(began)
            outcome = await self._run_elsewhere(runner, request, attempt)
            if outcome.labels:
                job.parent.tell_nowait(LabelsSet(job.task_run_id, outcome.labels))
        else:
            if fresh and job.task.effects_outside:
                outcome = await self._run_here_once_recorded(began)
            else:
                if fresh:
                    job.parent.tell_nowait(began)
                outcome = await self._run_here(attempt)
        job.parent.tell_nowait(
            AttemptFinished(
                job.task_run_id,
                attempt,
                outcome.state,
                outcome.outputs or None,
                outcome.metrics,
                error=outcome.error,
            )
        )
        if outcome.state is State.FAILED:
            raise TaskFailedError(outcome.error or "the attempt failed")  # retried by policy
        self.stop_self()

    async def _run_elsewhere(
        self, runner: AttemptRunner, request: AttemptRequest, attempt: int
    ) -> AttemptOutcome:
        durable = self.job.services.durable or _nothing_to_flush
        try:
            return await runner.run(request, self._logger(attempt), durable)
        except StoreError as exc:  # the store is failing: no work is handed out blind
            return AttemptOutcome(
                state=State.FAILED,
                error=f"could not record the task run before sending it to a worker: {exc}",
            )

    async def _run_here_once_recorded(self, began: AttemptBegan) -> AttemptOutcome:
        """Run an attempt that may act outside the execution only once its start is
        durable: after a crash, recovery sees it as lost and retries it under the next
        number, instead of running this one again unseen."""
        await self.job.parent.ask(began)
        try:
            await (self.job.services.durable or _nothing_to_flush)()
        except StoreError as exc:
            return AttemptOutcome(
                state=State.FAILED,
                error=f"could not record the attempt's start before running it: {exc}",
            )
        return await self._run_here(began.attempt)

    def _logger(self, attempt: int) -> Callable[[str, str], None]:
        parent, task_run_id = self.job.parent, self.job.task_run_id

        def log(level: str, message: str) -> None:
            parent.tell_nowait(TaskLogged(task_run_id, attempt, level.upper(), message))

        return log

    async def _run_here(self, attempt: int) -> AttemptOutcome:
        context = AttemptContext(self.job, attempt)
        try:
            return await run_attempt(
                self.job.task, context, self.job.services.clock, lambda: context.metrics
            )
        finally:
            context.cleanup()

    async def receive(self, message: object) -> None:
        return None
