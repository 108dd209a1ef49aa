"""ExecutionActor: one per execution. It owns the execution's state, decides what runs next,
enforces the transition table, and appends every change as an event."""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from actors import (
    ActorRef,
    Exit,
    ExitReason,
    Supervisor,
)
from runtime.engine import _workdir
from runtime.engine._controller import Child, Controller, Phase, Start
from runtime.engine._flowables import FlowableError, build_controller, sequential, switch_outputs
from runtime.engine._hooks import ExecutionHooks
from runtime.engine._messages import (
    AttemptBegan,
    AttemptFinished,
    ChildExecutionEnded,
    CommandResult,
    Dequeued,
    Kill,
    LabelsSet,
    Pause,
    Quiesce,
    Restart,
    Resume,
    SubflowStarted,
    TaskLogged,
    TimerFired,
    WorkingDirectoryCollected,
    WorkingDirectoryPrepared,
    WorkingDirectoryRemoved,
)
from runtime.engine._node import Kind, Node
from runtime.engine._retry import next_delay, retry_policy
from runtime.engine._services import EventSink, Services
from runtime.engine._taskrun import TaskRunActor, TaskRunJob, describe_error
from runtime.engine._variables import (
    OutputsTree,
    base_variables,
    labels_variable,
    parents_variables,
    task_run_variables,
)
from runtime.engine._workdir import WorkingDirectoryController, WorkingDirectoryError
from runtime.errors import InputValidationError, TiercelError
from runtime.expressions import ExpressionError, is_truthy
from runtime.inputs import coerce_type, resolve_inputs
from runtime.model import (
    ConstantRetry,
    Duration,
    ExponentialRetry,
    Flow,
    InputType,
    Retry,
    RetryBehavior,
    Task,
)
from runtime.model._common import as_text as _text
from runtime.model._events import (
    AttemptEnded,
    AttemptStarted,
    Event,
    ExecutionCreated,
    ExecutionEnded,
    ExecutionStateChanged,
    LabelsChanged,
    LogEmitted,
    MetricEmitted,
    OutputEmitted,
    TaskRunCreated,
    TaskRunsRemoved,
    TaskRunStateChanged,
)
from runtime.model._execution import Execution, execution_json
from runtime.model._fold import ExecutionFold
from runtime.model._states import (
    EXECUTION_TRANSITIONS,
    TASK_RUN_TRANSITIONS,
    State,
    check_execution_transition,
)
from runtime.storage import storage_for
from runtime.tasks.core.flow import (
    AllowFailure,
    FlowableTask,
    PauseBehavior,
    Subflow,
    Switch,
    WaitFor,
    WorkingDirectory,
)
from runtime.tasks.core.flow import (
    Pause as PauseTask,
)

_ids = itertools.count()


def new_id() -> str:
    """A short unique id: 22 characters of url-safe base 64 from 128 random bits, never
    starting with ``-`` or ``_`` (a command line reads a leading ``-`` as an option: one id
    in 64 could not be given to ``tiercel executions resume``)."""
    while True:
        found = base64.urlsafe_b64encode(os.urandom(16))[:22].decode()
        if found[0] not in "-_":
            return found


_PAUSE_DEFAULTS = {"timeout": PauseBehavior.FAIL, "pauseDuration": PauseBehavior.RESUME}
_BEHAVIOR_STATE = {
    PauseBehavior.FAIL: State.FAILED,
    PauseBehavior.WARN: State.WARNING,
    PauseBehavior.CANCEL: State.CANCELLED,
}


class ExecutionActor(Supervisor[object]):
    """Runs one execution of ``flow``. Task runs are its children."""

    intensity = None

    __slots__ = (
        "_log",
        "after",
        "base_variables",
        "by_key",
        "by_ref",
        "channel",
        "created",
        "decided",
        "deferred",
        "execution_id",
        "finished",
        "flow",
        "fold",
        "history",
        "hooks",
        "killing",
        "mark",
        "mode",
        "nodes",
        "on_end",
        "outputs",
        "outputs_of",
        "paused_by_user",
        "paused_nodes",
        "queue",
        "quiescing",
        "recovering",
        "restart_result",
        "restarting",
        "root",
        "running_actors",
        "seq",
        "services",
        "sink",
        "timers",
    )

    def __init__(
        self,
        flow: Flow,
        services: Services,
        sink: EventSink,
        created: ExecutionCreated | None = None,
        history: list[Event] | None = None,
        on_end: Callable[[Execution], None] | None = None,
        *,
        mode: str = "run",
        restart: bool = False,
        mark: tuple[str, State] | None = None,
    ) -> None:
        self.flow = flow
        self.services = services
        self.sink = sink
        self.created = created
        self.history = history or []
        self.on_end = on_end
        self.mode = mode
        self.restarting = restart
        self.mark = mark
        self.restart_result: CommandResult | None = None
        self.channel: Any = None
        self.fold = ExecutionFold()
        self.execution_id = ""
        self.recovering = mode == "recover"
        self.nodes: dict[str, Node] = {}
        self.by_ref: dict[ActorRef[Any], Node] = {}
        self.by_key: dict[tuple[str | None, str, str | None, int | None], str] = {}
        self.outputs = OutputsTree()
        self.outputs_of: dict[str, dict[str, Any]] = {}
        self.root: Controller | None = None
        self.after: Controller | None = None
        self.decided: State | None = None
        self.queue: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.killing = False
        self.quiescing = False
        self.paused_by_user = False
        self.deferred: list[tuple[Start, Node | None]] = []
        self.paused_nodes: set[str] = set()
        self.timers: dict[tuple[str, str], int] = {}
        self.running_actors = 0
        self.finished = False
        self.base_variables: dict[str, Any] = {}
        self.hooks = ExecutionHooks(storage_for(services.data_dir), services.clock, flow.namespace)
        self._log: structlog.typing.FilteringBoundLogger | None = None

    # -- plumbing -----------------------------------------------------------------------

    @property
    def execution(self) -> Execution:
        """The execution document."""
        assert self.fold.execution is not None
        return self.fold.execution

    @property
    def logger(self) -> structlog.typing.FilteringBoundLogger:
        """A logger bound to this execution's id."""
        if self._log is None:
            self._log = self.log.bind(execution_id=self.execution.id)
        return self._log

    def emit(self, kind: type[Event], task_run_id: str | None = None, **fields: Any) -> Event:
        """Append an event: number it, fold it into the document, hand it to the sink."""
        self.seq += 1
        event = kind(
            execution_id=self.execution_id,
            seq=self.seq,
            time=self.services.clock.utcnow(),
            task_run_id=task_run_id,
            **fields,
        )
        self.fold.apply(event)
        self.sink.publish(event)
        if kind is LogEmitted and fields.get("level") == "ERROR":
            self.hooks.errors.append(
                {
                    "executionId": event.execution_id,
                    "taskRunId": task_run_id,
                    "taskId": fields.get("task_id"),
                    "attemptNumber": fields.get("attempt"),
                    "level": "ERROR",
                    "message": fields.get("message"),
                    "timestamp": event.time,
                }
            )
        return event

    def later(self, action: Callable[..., None], *args: Any) -> None:
        """Queue work; ``drain`` runs it iteratively, so long chains never recurse deeply."""
        self.queue.append((action, args))

    def drain(self) -> None:
        """Run queued work until none is left, then end the execution if it is over.

        Work queued while a batch runs forms the next batch, so order is first-in first-out.
        """
        while self.queue:
            batch, self.queue = self.queue, []
            for action, args in batch:
                action(*args)
        self.check_end()
        if self.quiescing:
            self.check_quiet()

    def check_quiet(self) -> None:
        """While quiescing: tell the channel once no attempt is running (a task run waiting
        to retry is quiet; its wait is re-armed by recovery)."""
        if all(node.data.get("backoff") for node in self.by_ref.values()):
            quiet = getattr(self.channel, "quiet", None)
            if quiet is not None:
                quiet.set()

    def system_log(self, level: str, message: str, node: Node | None = None) -> None:
        """A log line of the execution (of a task run when ``node`` is given)."""
        self.emit(
            LogEmitted,
            node.id if node else None,
            attempt=(node.attempts or None) if node else None,
            level=level,
            message=message,
            task_id=node.task.id if node else None,
        )

    def set_execution_state(self, state: State) -> None:
        """Move the execution to ``state`` through the transition table."""
        current = self.execution.state.current
        if current is state:
            return
        check_execution_transition(current, state)
        self.emit(ExecutionStateChanged, state=state)

    def set_task_run_state(self, node: Node, state: State) -> None:
        """Move a task run to ``state`` through the transition table."""
        current = self.fold.task_run(node.id).state.current
        if current is state:
            node.state = state
            return
        node.state = current
        if state not in TASK_RUN_TRANSITIONS[node.state]:
            self.logger.warning(
                "ignored task run transition",
                task_run_id=node.id,
                current=node.state.value,
                target=state.value,
            )
            return
        node.state = state
        self.emit(TaskRunStateChanged, node.id, state=state)

    # -- lifecycle ----------------------------------------------------------------------

    async def on_start(self) -> None:
        if self.history:
            self.fold.apply_all(self.history)
            self.execution_id = self.history[0].execution_id
            self.seq = self.fold.last_seq
            self.share_document()
            self.base_variables = self.make_base_variables()
            if self.restarting:
                result = self.restart_result = self.restart(self.mark)
                if not result.ok:
                    self.logger.warning("restart refused", reason=result.message)
                    self.stop_self()
                    return
            else:
                execution = self.execution
                if execution.state.current is State.QUEUED:
                    return  # waits for its concurrency slot (Dequeued)
                if execution.state.current is State.CREATED and self.held_back():
                    return
                if execution.state.current is State.PAUSED and not any(
                    t.state.current is State.PAUSED for t in execution.task_run_list
                ):
                    self.paused_by_user = True
                self.rebuild_from_document()
                if self.mode == "replay" or execution.state.current.created:
                    self.set_execution_state(State.RUNNING)
            self.drain()
            return
        created = self.created
        assert created is not None
        self.fold.apply(created)
        self.execution_id = created.execution_id
        self.seq = created.seq
        self.share_document()
        self.sink.publish(created)
        self.base_variables = self.make_base_variables()
        if self.held_back():
            return
        self.begin()

    def held_back(self) -> bool:
        """The flow's concurrency limit left no slot (modes ``queue``, ``cancel``, ``fail``):
        wait QUEUED for one, or end CANCELLED or FAILED without running. True if so."""
        if self.mode == "queue":
            self.set_execution_state(State.QUEUED)
            return True
        if self.mode in ("cancel", "fail"):
            state = State.CANCELLED if self.mode == "cancel" else State.FAILED
            self.system_log("WARN", f"flow concurrency limit reached: execution {state.value}")
            self.finished = True
            self.emit(ExecutionEnded, state=state)
            if self.on_end is not None:
                self.on_end(self.execution)
            self.stop_self()
            return True
        return False

    def share_document(self) -> None:
        if self.channel is not None:
            self.channel.execution = self.fold.execution
            self.channel.started.set()

    def begin(self) -> None:
        self.set_execution_state(State.RUNNING)
        self.start_root()
        self.drain()

    def make_base_variables(self) -> dict[str, Any]:
        return base_variables(self.flow, self.execution, self.services.envs, self.outputs.root)

    def start_root(self) -> None:
        flow = self.flow
        self.root = sequential(flow.tasks, flow.errors, flow.finally_)
        for start in self.root.start():
            self.later(self.start_child, start, None)

    # -- variables ----------------------------------------------------------------------

    def variables(self, node: Node, attempt: int | None = None) -> dict[str, Any]:
        """The variables a task run's expressions see."""
        task_run = self.fold.task_run(node.id)
        attempts = (attempt - 1) if attempt is not None else len(task_run.attempts or ())
        context = dict(self.base_variables)
        context["task"] = {"id": node.task.id, "type": node.task.type}
        context["taskrun"] = task_run_variables(node, task_run.state.start_date, attempts)
        parents = parents_variables(node, self.outputs_of)
        context["parents"] = parents
        if parents:
            context["parent"] = parents[0]
        if node.kind is Kind.RUNNABLE and self.flow_has_working_dir(node):
            context["workerTaskrun"] = context["taskrun"]
        return context

    def flow_has_working_dir(self, node: Node) -> bool:
        parent = node.parent
        while parent is not None:
            if isinstance(parent.task, WorkingDirectory):
                return True
            parent = parent.parent
        return False

    def render(self, node: Node, value: Any) -> Any:
        return self.services.expressions.render_value(value, self.variables(node), self.hooks)

    def render_typed(self, node: Node, template: str) -> Any:
        return self.services.expressions.render_typed(template, self.variables(node), self.hooks)

    # -- creating task runs -------------------------------------------------------------

    def start_child(self, start: Start, parent: Node | None) -> None:
        """Create (or find, after a restart) the task run for ``start`` and launch it."""
        if self.killing:
            return
        if self.paused_by_user:
            self.deferred.append((start, parent))
            return
        child = start.child
        key = (parent.id if parent else None, child.task.id, child.value, child.iteration)
        existing = self.by_key.get(key)
        if existing is not None and existing in self.nodes:
            node = self.nodes[existing]
            node.phase, node.slot = start.phase, start.slot
            if node.state.terminal:
                self.later(self.child_ended, node)
            else:
                self.later(self.launch, node)
            return
        node = self.create_node(start.child, parent, start.phase, start.slot)
        self.later(self.launch, node)

    def start_after_child(self, start: Start) -> None:
        """Start a task of ``afterExecution`` (they run once the flow's state is decided)."""
        node = self.create_node(start.child, None, start.phase, start.slot)
        node.data["after"] = True
        self.later(self.launch, node)

    def create_node(self, child: Child, parent: Node | None, phase: Phase, slot: int) -> Node:
        task_run_id = new_id()
        self.emit(
            TaskRunCreated,
            task_run_id,
            task_id=child.task.id,
            parent_task_run_id=parent.id if parent else None,
            value=child.value,
            iteration=child.iteration,
        )
        node = Node(
            task_run_id, child.task, kind_of(child.task), parent, phase, slot, child.value,
            child.iteration,
        )  # fmt: skip
        self.nodes[task_run_id] = node
        self.by_key[
            (parent.id if parent else None, child.task.id, child.value, child.iteration)
        ] = task_run_id
        return node

    def launch(self, node: Node) -> None:
        """Start a created (or restarted) task run according to its kind."""
        if self.killing or self.quiescing:
            return  # quiescing: the task run stays CREATED; recovery launches it
        run_if = node.task.run_if
        if run_if is not None and node.state.created:
            try:
                rendered = self.render(node, run_if)
            except ExpressionError as exc:
                self.system_log("ERROR", f"runIf of {node.task.id}: {exc}", node)
                self.finish(node, State.FAILED)
                return
            if not is_truthy(None if rendered is None else str(rendered).lower()):
                self.set_task_run_state(node, State.SKIPPED)
                self.later(self.child_ended, node)
                return
        if node.kind is Kind.RUNNABLE:
            self.launch_runnable(node)
        elif node.kind is Kind.PAUSE:
            self.launch_pause(node)
        elif node.kind is Kind.SUBFLOW:
            self.launch_subflow(node)
        else:
            self.launch_flowable(node)

    # -- runnable task runs -------------------------------------------------------------

    def effective_retry(self, node: Node) -> Retry | None:
        """The task's retry, else the nearest flowable parent's, else the flow's."""
        if node.task.retry is not None:
            return node.task.retry
        parent = node.parent
        while parent is not None:
            if parent.task.retry is not None:
                return parent.task.retry
            parent = parent.parent
        return self.flow.retry

    def retry_delay(self, node: Node) -> float | None:
        """Seconds before the next attempt of a failed task run, or None if none is left."""
        retry = self.effective_retry(node)
        if retry is None or retry.behavior is not RetryBehavior.RETRY_FAILED_TASK:
            return None
        attempts = self.fold.task_run(node.id).attempts or []
        if not attempts:
            return 0.0
        elapsed = (self.services.clock.utcnow() - attempts[0].state.start_date).total_seconds()
        return next_delay(retry, len(attempts), elapsed, self.system.random)

    def resume_lost_attempt(self, node: Node) -> bool:
        """After a crash: end an attempt that was running as FAILED, and retry or fail.

        Returns True when the task run was handled (the caller launches nothing).
        """
        task_run = self.fold.task_run(node.id)
        attempts = task_run.attempts or []
        if (
            attempts
            and not attempts[-1].state.current.terminal
            and self.services.attempt_runner is not None
            and self.shared_work_dir(node) is None
        ):
            # It ran on a worker, which may still run it or have finished it: wait for
            # that attempt's outcome (the queue knows it) rather than run it again.
            self.launch_runnable(node, reattach=True)
            return True
        if attempts and not attempts[-1].state.current.terminal:
            number = len(attempts)
            self.emit(AttemptEnded, node.id, attempt=number, state=State.FAILED)
            self.system_log(
                "ERROR",
                f"attempt {number} was running when Tiercel stopped; the process running it "
                "was lost, so the attempt is marked FAILED",
                node,
            )
            delay = self.retry_delay(node)
            if delay is None:
                self.finish(node, self.failed_state(node))
            else:
                self.set_task_run_state(node, State.RETRYING)
                self.arm_timer(node, "relaunch", delay)
            return True
        if task_run.state.current is State.RETRYING and not node.data.pop("relaunch", False):
            ended = attempts[-1].state.end_date if attempts else None
            delay = self.retry_delay(node) or 0.0
            if ended is not None:
                waited = (self.services.clock.utcnow() - ended).total_seconds()
                delay = max(0.0, delay - waited)
            self.arm_timer(node, "relaunch", delay)
            return True
        return False

    def launch_runnable(self, node: Node, *, reattach: bool = False) -> None:
        task_run = self.fold.task_run(node.id)
        attempts_done = len(task_run.attempts or ())
        elapsed = 0.0
        if attempts_done or task_run.state.current is State.RETRYING:
            if not reattach and self.resume_lost_attempt(node):
                return
            first = task_run.attempts[0].state.start_date if task_run.attempts else None
            if first is not None:
                elapsed = (self.services.clock.utcnow() - first).total_seconds()
        if reattach:
            attempts_done -= 1  # the last attempt is waited for again, not started anew
        job = TaskRunJob(
            task=node.task,
            task_run_id=node.id,
            execution_id=self.execution.id,
            namespace=self.flow.namespace,
            flow_id=self.flow.id,
            flow_revision=self.flow.revision or 1,
            value=node.value,
            attempt_base=attempts_done,
            reattach=reattach,
            parent=self.ref,
            services=self.services,
            variables=lambda attempt, node=node: self.variables(node, attempt),  # type: ignore[misc]
            hooks=self.hooks,
            work_dir=self.shared_work_dir(node),
        )
        ref = self.spawn(
            lambda: TaskRunActor(job),
            name=f"taskrun:{node.task.id}",
            policy=retry_policy(self.effective_retry(node), attempts_done, elapsed),
        )
        node.ref = ref
        self.by_ref[ref] = node
        self.running_actors += 1

    def shared_work_dir(self, node: Node) -> Path | None:
        """The directory of the nearest WorkingDirectory above ``node`` whose ``tasks`` it is
        part of (its ``errors`` and ``finally`` run after the directory is gone, each task
        in a directory of its own, as in Kestra)."""
        below, parent = node, node.parent
        while parent is not None:
            if isinstance(parent.task, WorkingDirectory):
                if below.phase is not Phase.MAIN:
                    return None
                path = self.workdir_path(parent)
                path.mkdir(parents=True, exist_ok=True)
                return path
            below, parent = parent, parent.parent
        return None

    def on_attempt_began(self, message: AttemptBegan) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is None:
            return
        node.attempts = message.attempt
        node.data.pop("backoff", None)
        if node.state is State.RETRYING or node.state.created:
            node.state = State.RUNNING
        self.emit(AttemptStarted, node.id, attempt=message.attempt)
        if node.state is not State.RUNNING:
            node.state = State.RUNNING

    def on_attempt_finished(self, message: AttemptFinished) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is None:
            return
        for name, kind, value, tags in message.metrics:
            self.emit(
                MetricEmitted, node.id, attempt=message.attempt, name=name, type=kind, value=value,
                tags=tags,
            )  # fmt: skip
        if message.outputs:
            self.record_outputs(node, message.outputs)
        if message.error:
            self.emit(
                LogEmitted, node.id, attempt=message.attempt, level="ERROR", message=message.error,
                task_id=node.task.id,
            )  # fmt: skip
        self.emit(AttemptEnded, node.id, attempt=message.attempt, state=message.state)
        node.data["last_state"] = message.state

    def record_outputs(self, node: Node, outputs: dict[str, Any]) -> None:
        self.emit(OutputEmitted, node.id, outputs=outputs)
        merged = self.outputs_of.setdefault(node.id, {})
        merged.update(outputs)
        self.outputs.put(node.task.id, node.value_path, outputs)

    def on_task_logged(self, message: TaskLogged) -> None:
        node = self.nodes.get(message.task_run_id)
        self.emit(
            LogEmitted, message.task_run_id, attempt=message.attempt, level=message.level,
            message=message.message, task_id=node.task.id if node else None,
        )  # fmt: skip

    async def on_child_restarting(
        self, child: ActorRef[Any], exit: Exit, attempt: int, delay: float
    ) -> None:
        node = self.by_ref.get(child)
        if node is None:
            return
        if self.killing:
            child.kill()
            return
        node.data["backoff"] = True
        self.set_task_run_state(node, State.RETRYING)

    async def on_child_exit(self, child: ActorRef[Any], exit: Exit) -> None:
        node = self.by_ref.pop(child, None)
        if node is None:
            return
        self.running_actors -= 1
        node.ref = None
        if exit.reason is ExitReason.KILLED:
            task_run = self.fold.task_run(node.id)
            if task_run.attempts and not task_run.attempts[-1].state.current.terminal:
                self.emit(AttemptEnded, node.id, attempt=len(task_run.attempts), state=State.KILLED)
            self.finish(node, State.KILLED)
        elif exit.failed:
            self.finish(node, self.failed_state(node))
        else:
            state = node.data.pop("last_state", State.SUCCESS)
            retry = self.effective_retry(node)
            retried = retry is not None and retry.warning_on_retry and node.attempts > 1
            if state is State.SUCCESS and retried:
                state = State.WARNING
            self.finish(node, state)
        self.drain()

    def failed_state(self, node: Node) -> State:
        """FAILED, or RETRIED when a CREATE_NEW_EXECUTION retry will start a new execution."""
        retry = self.effective_retry(node)
        if retry is None or retry.behavior is not RetryBehavior.CREATE_NEW_EXECUTION:
            return State.FAILED
        metadata = self.execution.metadata
        attempts = int(metadata.get("attemptNumber", 1))
        first = metadata.get("originalCreatedDate")
        started = datetime.fromisoformat(first) if first else self.execution.state.start_date
        elapsed = (self.services.clock.utcnow() - started).total_seconds()
        if next_delay(retry, attempts, elapsed, self.system.random) is None:
            return State.FAILED
        node.data["retry_new_execution"] = True
        return State.RETRIED

    # -- flowable task runs -------------------------------------------------------------

    def launch_flowable(self, node: Node) -> None:
        task = node.task
        assert isinstance(task, FlowableTask)
        self.set_task_run_state(node, State.RUNNING)
        if node.controller is None:
            try:
                if isinstance(task, Switch):
                    self.record_outputs(node, switch_outputs(task, lambda v: self.render(node, v)))
                node.controller = build_controller(
                    task, lambda v: self.render(node, v), lambda t: self.render_typed(node, t)
                )
            except (ExpressionError, FlowableError) as exc:
                self.system_log("ERROR", str(exc), node)
                self.finish(node, State.FAILED)
                return
            if isinstance(task, WaitFor):
                task_run = self.fold.task_run(node.id)
                done = (task_run.outputs or {}).get("iterationCount", 0)
                age = (self.services.clock.utcnow() - task_run.state.start_date).total_seconds()
                node.data.setdefault("iteration", int(done))
                node.data.setdefault("started", self.services.clock.now() - age)
                node.controller = self.wait_for_controller(node, task)
        if isinstance(task, WorkingDirectory) and not node.data.get("workdir_ready"):
            self.prepare_workdir(node)  # its tasks start once the directory is ready
            return
        self.start_children(node)

    def start_children(self, node: Node) -> None:
        """Start a flowable task run's first children."""
        controller = node.controller
        assert controller is not None
        for start in controller.start():
            self.later(self.start_child, start, node)
        self.controller_moved(node, controller)

    def controller_moved(self, node: Node, controller: Controller) -> None:
        """After a flowable's controller moved on: end it if it is done, or (a
        WorkingDirectory whose tasks are over) collect its files."""
        if controller.done:
            self.later(self.flowable_done, node)
        elif isinstance(controller, WorkingDirectoryController) and controller.collecting:
            self.later(self.workdir_tasks_ended, node)

    def child_ended(self, node: Node) -> None:
        """A task run ended: tell its parent's controller, start what comes next."""
        parent = node.parent
        if parent is None:
            controller = self.after if node.data.get("after") else self.root
        else:
            controller = parent.controller
        if controller is None:
            return
        for start in controller.ended(node.phase, node.slot, node.state):
            if controller is self.after:
                self.later(self.start_after_child, start)
            else:
                self.later(self.start_child, start, parent)
        if parent is not None:
            self.controller_moved(parent, controller)
        # the flow's own controller: check_end handles it

    def flowable_done(self, node: Node) -> None:
        if node.state.terminal or node.controller is None:
            return
        if isinstance(node.task, WaitFor):
            self.wait_for_next(node)
            return
        if self.killing:
            self.finish(node, State.KILLED)
            return
        state = node.controller.final_state()
        if isinstance(node.task, AllowFailure) and state is State.FAILED:
            state = State.WARNING
        self.finish(node, state)

    def finish(self, node: Node, state: State) -> None:
        """End a task run in ``state`` (after allowFailure / allowWarning)."""
        task = node.task
        if state is State.FAILED and task.allow_failure:
            state = State.SUCCESS if task.allow_warning else State.WARNING
        elif state is State.WARNING and task.allow_warning:
            state = State.SUCCESS
        self.clear_timers(node)
        self.paused_nodes.discard(node.id)
        self.set_task_run_state(node, state)
        self.later(self.child_ended, node)

    # -- WaitFor ------------------------------------------------------------------------

    def wait_for_controller(self, node: Node, task: WaitFor) -> Controller:
        iteration = node.data["iteration"]
        self.record_outputs(node, {"iterationCount": iteration})
        from runtime.engine._plans import SequentialPlan

        plan = SequentialPlan([Child(t, None, iteration) for t in task.tasks])
        return Controller(plan, task.errors, ())

    def wait_for_next(self, node: Node) -> None:
        task = node.task
        assert isinstance(task, WaitFor)
        assert node.controller is not None
        state = node.controller.final_state()
        iteration = node.data["iteration"] + 1
        node.data["iteration"] = iteration
        self.record_outputs(node, {"iterationCount": iteration})
        if state in (State.FAILED, State.KILLED) or self.killing:
            self.finish(node, State.KILLED if self.killing else State.FAILED)
            return
        try:
            done = is_truthy(_text(self.render(node, task.condition)))
        except ExpressionError as exc:
            self.system_log("ERROR", f"{task.id}: condition: {exc}", node)
            self.finish(node, State.FAILED)
            return
        if done:
            self.finish(node, State.SUCCESS)
            return
        frequency = task.check_frequency
        elapsed = self.services.clock.now() - node.data["started"]
        if (
            iteration >= frequency.max_iterations
            or elapsed >= frequency.max_duration.total_seconds()
        ):
            reason = "max iterations" if iteration >= frequency.max_iterations else "max duration"
            self.system_log(
                "WARN", f"{task.id}: {reason} reached after {iteration} iterations", node
            )
            self.finish(node, State.FAILED if task.fail_on_max_reached else State.SUCCESS)
            return
        node.data["waiting"] = True
        self.arm_timer(node, "waitfor", frequency.interval.total_seconds())

    def wait_for_resume(self, node: Node) -> None:
        task = node.task
        assert isinstance(task, WaitFor)
        node.data.pop("waiting", None)
        node.controller = self.wait_for_controller(node, task)
        for start in node.controller.start():
            self.later(self.start_child, start, node)

    # -- Pause --------------------------------------------------------------------------

    def launch_pause(self, node: Node) -> None:
        task = node.task
        assert isinstance(task, PauseTask)
        if node.data.get("resumed"):
            self.launch_flowable(node)
            return
        task_run = self.fold.task_run(node.id)
        already_paused = task_run.state.current is State.PAUSED
        paused_at = task_run.state.histories[-1].date if already_paused else None
        if not already_paused:
            self.set_task_run_state(node, State.RUNNING)
        timers: list[tuple[str, str | None]] = [
            ("delay", task.delay),
            ("pauseDuration", task.pause_duration),
            ("timeout", task.timeout),
        ]
        for kind, value in timers:
            if value is None:
                continue
            try:
                rendered = self.render(node, value)
                seconds = Duration.parse(str(rendered)).total_seconds()
            except (ExpressionError, ValueError) as exc:
                self.system_log("ERROR", f"{task.id}.{kind}: {exc}", node)
                self.finish(node, State.FAILED)
                return
            if paused_at is not None:  # re-armed after a restart: at the original due time
                seconds -= (self.services.clock.utcnow() - paused_at).total_seconds()
            self.arm_timer(node, kind, max(0.0, seconds))
        self.set_task_run_state(node, State.PAUSED)
        self.paused_nodes.add(node.id)
        if self.execution.state.current is State.RUNNING:
            self.set_execution_state(State.PAUSED)

    def resume_pause(self, node: Node, inputs: dict[str, Any]) -> CommandResult:
        task = node.task
        assert isinstance(task, PauseTask)
        if task.on_resume:
            try:
                values = resolve_inputs(task.on_resume, inputs)
            except InputValidationError as exc:
                return CommandResult(False, str(exc))
            self.record_outputs(node, {"onResume": values})
        self.clear_timers(node)
        self.paused_nodes.discard(node.id)
        node.data["resumed"] = True
        self.set_task_run_state(node, State.RUNNING)
        self.later(self.launch_flowable, node)
        return CommandResult(True)

    def pause_expired(self, node: Node, kind: str) -> None:
        task = node.task
        assert isinstance(task, PauseTask)
        if kind == "delay":
            behavior = PauseBehavior.RESUME
        else:
            behavior = task.behavior or _PAUSE_DEFAULTS[kind]
        if behavior is PauseBehavior.RESUME:
            self.resume_pause(node, {})
        else:
            self.system_log("WARN", f"{task.id}: pause {kind} elapsed ({behavior.value})", node)
            self.finish(node, _BEHAVIOR_STATE[behavior])
        self.maybe_unpause_execution()

    def maybe_unpause_execution(self) -> None:
        if self.paused_nodes or self.paused_by_user:
            return
        if self.execution.state.current is State.PAUSED:
            self.set_execution_state(State.RESTARTED)
            self.set_execution_state(State.RUNNING)

    # -- Subflow ------------------------------------------------------------------------

    def launch_subflow(self, node: Node) -> None:
        task_run = self.fold.task_run(node.id)
        attempts = task_run.attempts or []
        child = (task_run.outputs or {}).get("executionId")
        if attempts and not attempts[-1].state.current.terminal and child:
            node.attempts = len(attempts)
            node.data["child"] = child
            node.data.setdefault("first_attempt", self.services.clock.now())
            self.start_task(self.services.watch_child, child, self.execution.id, node.id)
            return
        self.set_task_run_state(node, State.RUNNING)
        node.data.setdefault("first_attempt", self.services.clock.now())
        node.attempts = len(self.fold.task_run(node.id).attempts or ()) + 1
        self.emit(AttemptStarted, node.id, attempt=node.attempts)
        node.state = State.RUNNING
        self.start_task(self.run_subflow, node)

    async def run_subflow(self, node: Node) -> None:
        task = node.task
        assert isinstance(task, Subflow)
        try:
            inputs = self.render(node, task.inputs or {})
            labels = self.subflow_labels(node, task)
            namespace = str(self.render(node, task.namespace))
            flow_id = str(self.render(node, task.flow_id))
            child_id = await self.services.start_child(
                self.execution, node.id, namespace, flow_id, task.revision, inputs, labels,
                task.wait,
            )  # fmt: skip
        except Exception as exc:
            self.ref.tell_nowait(TaskLogged(node.id, node.attempts, "ERROR", describe_error(exc)))
            await self.ref.tell(ChildExecutionEnded(node.id, _FAILED_PLACEHOLDER))
            return
        node.data["child"] = child_id
        if node.state.terminal or self.killing:  # killed while the child was starting
            await self.services.kill_execution(child_id)
            return
        await self.ref.tell(SubflowStarted(node.id, child_id))
        if not task.wait:
            self.ref.tell_nowait(
                AttemptFinished(node.id, node.attempts, State.SUCCESS, {"executionId": child_id})
            )
            await self.ref.tell(ChildExecutionEnded(node.id, _NO_WAIT_PLACEHOLDER))

    def subflow_labels(self, node: Node, task: Subflow) -> list[tuple[str, str]]:
        labels: list[tuple[str, str]] = []
        if task.inherit_labels:
            labels += [
                (label.key, label.value)
                for label in self.execution.labels
                if label.key != "system.correlationId"
            ]
        rendered = self.render(node, task.labels) if task.labels else None
        if isinstance(rendered, dict):
            labels += [(str(k), str(v)) for k, v in rendered.items()]
        elif isinstance(rendered, list):
            labels += [(str(item["key"]), str(item["value"])) for item in rendered]
        correlation = next(
            (lab.value for lab in self.execution.labels if lab.key == "system.correlationId"),
            self.execution.id,
        )
        labels.append(("system.correlationId", correlation))
        return labels

    def on_subflow_started(self, message: SubflowStarted) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is not None and not node.state.terminal:
            self.record_outputs(node, {"executionId": message.execution_id})

    def on_child_execution_ended(self, message: ChildExecutionEnded) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is None or node.state.terminal:
            return
        task = node.task
        assert isinstance(task, Subflow)
        child = message.execution
        if child is _NO_WAIT_PLACEHOLDER:
            self.finish(node, node.data.pop("last_state", State.SUCCESS))
            return
        if child is _FAILED_PLACEHOLDER:
            self.emit(AttemptEnded, node.id, attempt=node.attempts, state=State.FAILED)
            self.retry_or_finish_subflow(node)
            return
        outputs: dict[str, Any] = {
            "executionId": child.id,
            "state": child.state.current.value,
            "outputs": child.outputs or {},
        }
        state = child.state.current
        if task.outputs:
            try:
                child_context = dict(self.variables(node))
                child_context["outputs"] = _child_outputs(child)
                outputs["outputs"] = {
                    **(child.outputs or {}),
                    **self.services.expressions.render_value(
                        task.outputs, child_context, self.hooks
                    ),
                }
            except ExpressionError as exc:
                self.system_log("ERROR", f"{task.id}: outputs: {exc}", node)
                state = State.FAILED
        self.record_outputs(node, outputs)
        if state in (State.FAILED, State.KILLED) and not task.transmit_failed:
            state = State.SUCCESS
        elif state is State.RETRIED:
            state = State.FAILED if task.transmit_failed else State.SUCCESS
        attempt_state = state if state.terminal else State.SUCCESS
        self.emit(AttemptEnded, node.id, attempt=node.attempts, state=attempt_state)
        if state is State.FAILED:
            self.retry_or_finish_subflow(node)
        else:
            self.finish(node, state)

    def retry_or_finish_subflow(self, node: Node) -> None:
        """A failed subflow attempt: retry by the task's policy (a new child), or fail."""
        retry = self.effective_retry(node)
        delay = None
        if retry is not None and retry.behavior is RetryBehavior.RETRY_FAILED_TASK:
            elapsed = self.services.clock.now() - node.data["first_attempt"]
            delay = next_delay(retry, node.attempts, elapsed, self.system.random)
        if delay is None or self.killing:
            self.finish(node, self.failed_state(node))
            return
        self.set_task_run_state(node, State.RETRYING)
        self.arm_timer(node, "subflow", delay)

    # -- WorkingDirectory ---------------------------------------------------------------

    def workdir_path(self, node: Node) -> Path:
        """The shared directory of a WorkingDirectory task run."""
        return _workdir.directory_of(self.services.data_dir, self.execution.id, node.id)

    def prepare_workdir(self, node: Node) -> None:
        """Render ``inputFiles`` and write them (in a task) before the first child starts."""
        task = node.task
        assert isinstance(task, WorkingDirectory)
        try:
            files = _workdir.input_files(
                task.input_files,
                lambda v: self.render(node, v),
                lambda t: self.render_typed(node, t),
            )
        except (ExpressionError, WorkingDirectoryError) as exc:
            self.system_log("ERROR", f"{task.id}: inputFiles: {exc}", node)
            self.finish(node, State.KILLED if self.killing else State.FAILED)
            return
        node.data["workdir_busy"] = True
        self.start_task(self.run_workdir_prepare, node, files)

    async def run_workdir_prepare(self, node: Node, files: dict[str, str | None]) -> None:
        directory = self.workdir_path(node)
        error = None
        try:
            await _workdir.write_input_files(directory, files, storage_for(self.services.data_dir))
        except Exception as exc:
            error = _why(exc)
            await _workdir.remove(directory)
        await self.ref.tell(WorkingDirectoryPrepared(node.id, error))

    def on_workdir_prepared(self, message: WorkingDirectoryPrepared) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is None:
            return
        node.data.pop("workdir_busy", None)
        if node.state.terminal:
            self.start_task(_workdir.remove, self.workdir_path(node))
            return
        if message.error is not None:
            self.system_log("ERROR", f"{node.task.id}: inputFiles: {message.error}", node)
            self.finish(node, State.KILLED if self.killing else State.FAILED)
            return
        node.data["workdir_ready"] = True
        self.start_children(node)

    def workdir_tasks_ended(self, node: Node) -> None:
        """The tasks of a WorkingDirectory are over (ended, failed or killed): collect its
        ``outputFiles`` unless they were (before a restart of Tiercel), then remove it."""
        task = node.task
        assert isinstance(task, WorkingDirectory)
        controller = node.controller
        if (
            not isinstance(controller, WorkingDirectoryController)
            or not controller.collecting
            or node.data.get("workdir_busy")
            or node.state.terminal
        ):
            return
        node.data["workdir_busy"] = True
        outputs = self.fold.task_run(node.id).outputs or {}
        if not task.output_files or outputs.get("outputFiles") is not None:
            self.start_task(self.run_workdir_remove, node)
            return
        try:
            patterns = [str(self.render(node, pattern)) for pattern in task.output_files]
        except ExpressionError as exc:
            self.on_workdir_collected(WorkingDirectoryCollected(node.id, error=str(exc)))
            return
        self.start_task(self.run_workdir_collect, node, patterns)

    async def run_workdir_collect(self, node: Node, patterns: list[str]) -> None:
        owner = (self.flow.namespace, self.flow.id, self.execution.id, node.id)
        storage = storage_for(self.services.data_dir)
        try:
            found = await _workdir.collect_output_files(
                self.workdir_path(node), patterns, storage, owner
            )
        except Exception as exc:
            await self.ref.tell(WorkingDirectoryCollected(node.id, error=_why(exc)))
            return
        await self.ref.tell(WorkingDirectoryCollected(node.id, found))

    def on_workdir_collected(self, message: WorkingDirectoryCollected) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is None or node.state.terminal:
            return
        if message.error is not None or message.output_files is None:
            self.system_log("ERROR", f"{node.task.id}: outputFiles: {message.error}", node)
            node.data["workdir_failed"] = True
        else:
            self.record_outputs(node, {"outputFiles": message.output_files})
        node.data["workdir_busy"] = True
        self.start_task(self.run_workdir_remove, node)

    async def run_workdir_remove(self, node: Node) -> None:
        # The outputs must be durable before the files they were collected from are gone:
        # else a crash in between would leave nothing to collect them from again.
        flush = getattr(getattr(self.sink, "store", None), "flush", None)
        if flush is not None:
            try:
                await flush()
            except Exception as exc:
                reason = describe_error(exc)
                self.logger.warning("could not flush before removing a directory", error=reason)
        await _workdir.remove(self.workdir_path(node))
        await self.ref.tell(WorkingDirectoryRemoved(node.id))

    def on_workdir_removed(self, message: WorkingDirectoryRemoved) -> None:
        node = self.nodes.get(message.task_run_id)
        if node is None:
            return
        node.data.pop("workdir_busy", None)
        controller = node.controller
        if node.state.terminal or not isinstance(controller, WorkingDirectoryController):
            return
        for start in controller.release(failed=node.data.pop("workdir_failed", False)):
            self.later(self.start_child, start, node)
        self.controller_moved(node, controller)

    def workdir_restart_runs(self) -> set[str]:
        """Task runs under a failed or killed WorkingDirectory: a restart runs it again from
        its first task, in a new directory (Kestra's ``ExecutionService.removeWorkerTask``).
        Its collected ``outputFiles`` are forgotten, to be collected again."""
        doomed: set[str] = set()
        again: set[str] = set()
        for task_run in self.execution.task_run_list:
            task = self.flow.find_task(task_run.task_id)
            if task_run.parent_task_run_id in again or task_run.parent_task_run_id in doomed:
                doomed.add(task_run.id)
            elif isinstance(task, WorkingDirectory) and task_run.state.current in (
                State.FAILED, State.KILLED
            ):  # fmt: skip
                again.add(task_run.id)
                if (task_run.outputs or {}).get("outputFiles") is not None:
                    self.emit(OutputEmitted, task_run.id, outputs={"outputFiles": None})
        return doomed

    # -- timers -------------------------------------------------------------------------

    def arm_timer(self, node: Node, kind: str, seconds: float) -> None:
        token = next(_ids)
        self.timers[(node.id, kind)] = token
        self.send_after(seconds, TimerFired(node.id, kind, token))

    def clear_timers(self, node: Node) -> None:
        for kind in ("delay", "pauseDuration", "timeout", "waitfor", "subflow", "relaunch"):
            self.timers.pop((node.id, kind), None)

    def on_timer(self, message: TimerFired) -> None:
        if self.timers.get((message.task_run_id, message.kind)) != message.token:
            return  # disarmed
        del self.timers[(message.task_run_id, message.kind)]
        node = self.nodes.get(message.task_run_id)
        if node is None or node.state.terminal or self.killing or self.quiescing:
            return  # quiescing: recovery re-arms the timer at its due time
        if message.kind == "waitfor":
            self.wait_for_resume(node)
        elif message.kind == "subflow":
            self.launch_subflow(node)
        elif message.kind == "relaunch":
            node.data["relaunch"] = True
            self.launch_runnable(node)
        else:
            self.pause_expired(node, message.kind)

    # -- commands -----------------------------------------------------------------------

    def kill(self) -> CommandResult:
        current = self.execution.state.current
        if current.terminal:
            return CommandResult(False, f"execution is already {current.value}")
        if self.killing:
            return CommandResult(True, "already killing")
        if current is State.QUEUED:
            self.end(State.KILLED)  # as in Kestra: a queued execution is killed before it runs
            return CommandResult(True)
        self.killing = True
        self.timers.clear()
        self.deferred.clear()
        if State.KILLING in EXECUTION_TRANSITIONS[current]:
            self.set_execution_state(State.KILLING)
        if self.root is not None:
            self.root.halt()
        for node in list(self.nodes.values()):
            if node.controller is not None:
                node.controller.halt()
            if node.ref is not None:
                node.ref.kill()
                runner = self.services.attempt_runner
                if runner is not None:
                    self.start_task(runner.kill, node.id)  # it may run on another machine
            elif node.kind is Kind.SUBFLOW and not node.state.terminal:
                child = node.data.get("child")
                if child is not None:
                    self.start_task(self.services.kill_execution, child)
                self.later(self.finish, node, State.KILLED)
            elif not node.state.terminal and node.controller is None:
                self.later(self.finish, node, State.KILLED)
        self.paused_nodes.clear()
        return CommandResult(True)

    def pause(self) -> CommandResult:
        current = self.execution.state.current
        if current is not State.RUNNING:
            return CommandResult(
                False, f"only a RUNNING execution can be paused, not {current.value}"
            )
        self.paused_by_user = True
        self.set_execution_state(State.PAUSED)
        return CommandResult(True)

    def resume(self, inputs: dict[str, Any]) -> CommandResult:
        current = self.execution.state.current
        if current is not State.PAUSED:
            return CommandResult(
                False, f"only a PAUSED execution can be resumed, not {current.value}"
            )
        for task_run_id in list(self.paused_nodes):
            result = self.resume_pause(self.nodes[task_run_id], inputs)
            if not result.ok:
                return result
        self.paused_by_user = False
        self.set_execution_state(State.RESTARTED)
        self.set_execution_state(State.RUNNING)
        deferred, self.deferred = self.deferred, []
        for start, parent in deferred:
            self.later(self.start_child, start, parent)
        return CommandResult(True)

    def restart(self, mark: tuple[str, State] | None = None) -> CommandResult:
        """Restart in place: failed task runs run again. With ``mark`` (a task run id and a
        state), only that task run changes, to that state, and the execution re-decides
        from there (Kestra's "change task run state")."""
        current = self.execution.state.current
        if mark is None and current not in (
            State.FAILED, State.KILLED, State.PAUSED, State.WARNING
        ):  # fmt: skip
            return CommandResult(
                False, f"only a FAILED, KILLED, WARNING or PAUSED execution can be restarted, "
                f"not {current.value}",
            )  # fmt: skip
        if mark is not None:
            refused = self.markable(mark[0])
            if refused is not None:
                return CommandResult(False, refused)
        self.killing = False
        self.finished = False
        doomed = self.error_branch_runs()
        if mark is None:
            doomed |= self.workdir_restart_runs()
        if mark is not None:
            doomed.discard(mark[0])
        if doomed:
            self.emit(TaskRunsRemoved, task_run_ids=sorted(doomed))
        self.set_execution_state(State.RESTARTED)
        if mark is not None:
            self.mark_task_run(*mark)
        else:
            for task_run in self.execution.task_run_list:
                if task_run.state.current in (State.FAILED, State.KILLED, State.CANCELLED):
                    task = self.flow.find_task(task_run.task_id)
                    again = State.RESTARTED
                    if task is not None and kind_of(task) in (
                        Kind.FLOWABLE, Kind.PAUSE, Kind.WAIT_FOR
                    ):  # fmt: skip
                        again = State.RUNNING  # a flowable re-decides; its children restart
                    self.emit(TaskRunStateChanged, task_run.id, state=again)
        snapshot = copy_execution(self.execution)
        self.rebuild_from_document()
        self.set_execution_state(State.RUNNING)
        return CommandResult(True, snapshot=snapshot)

    def markable(self, task_run_id: str) -> str | None:
        """Why the state of ``task_run_id`` cannot be changed by hand, or None if it can."""
        current = self.execution.state.current
        if not current.terminal:
            return f"only a finished execution's task runs can change state, not {current.value}"
        task_run = next((t for t in self.execution.task_run_list if t.id == task_run_id), None)
        if task_run is None:
            return f"execution {self.execution.id} has no task run {task_run_id}"
        if not task_run.state.current.terminal:
            return f"task run {task_run_id} is {task_run.state.current.value}, not finished"
        return None

    def mark_task_run(self, task_run_id: str, state: State) -> None:
        """Set a finished task run (and its last attempt) to ``state``; its flowable parents
        run again so that they re-decide."""
        task_run = self.fold.task_run(task_run_id)
        self.emit(TaskRunStateChanged, task_run_id, state=state)
        if task_run.attempts:
            self.emit(AttemptEnded, task_run_id, attempt=len(task_run.attempts), state=state)
        parent_id = task_run.parent_task_run_id
        while parent_id is not None:
            parent = self.fold.task_run(parent_id)
            if parent.state.current is not State.RUNNING:
                self.emit(TaskRunStateChanged, parent_id, state=State.RUNNING)
            parent_id = parent.parent_task_run_id

    def error_branch_runs(self) -> set[str]:
        """Task runs of ``errors`` branches (and everything under them): a restart drops them."""
        error_tasks = {task.id for task in self.flow.errors}
        for task in self.flow.all_tasks():
            if isinstance(task, FlowableTask):
                error_tasks.update(t.id for t in task.errors)
        doomed: set[str] = set()
        for task_run in self.execution.task_run_list:
            if task_run.task_id in error_tasks or task_run.parent_task_run_id in doomed:
                doomed.add(task_run.id)
        return doomed

    def rebuild_from_document(self) -> None:
        """Rebuild nodes, indexes and outputs from the document, then drive from the root.

        Finished task runs are fed back to their controllers; the rest are launched again.
        """
        execution = self.execution
        nodes: dict[str, Node] = {}
        self.by_key.clear()
        self.outputs.clear()
        self.outputs_of.clear()
        for task_run in execution.task_run_list:
            task = self.flow.find_task(task_run.task_id)
            if task is None:
                continue
            parent = nodes.get(task_run.parent_task_run_id or "")
            node = Node(
                task_run.id, task, kind_of(task), parent, Phase.MAIN, 0, task_run.value,
                task_run.iteration,
            )  # fmt: skip
            node.state = task_run.state.current
            node.attempts = len(task_run.attempts or ())
            if (
                isinstance(task, PauseTask)
                and any(h.state is State.PAUSED for h in task_run.state.histories)
                and task_run.state.current is not State.PAUSED
            ):
                node.data["resumed"] = True
            nodes[task_run.id] = node
            if parent is not None and isinstance(parent.task, WorkingDirectory):
                parent.data["workdir_ready"] = True  # its files were written before
            self.by_key[
                (task_run.parent_task_run_id, task.id, task_run.value, task_run.iteration)
            ] = task_run.id
            if task_run.outputs:
                self.outputs_of[task_run.id] = dict(task_run.outputs)
                self.outputs.put(task.id, node.value_path, task_run.outputs)
        self.nodes = nodes
        self.paused_nodes = {n.id for n in nodes.values() if n.state is State.PAUSED}
        for node in nodes.values():
            if node.state is State.RUNNING and node.kind is not Kind.RUNNABLE:
                node.state = State.RESTARTED  # flowables re-decide their children
        self.start_root()

    async def receive(self, message: object) -> object:
        if isinstance(message, AttemptBegan):
            self.on_attempt_began(message)
            return None
        if isinstance(message, AttemptFinished):
            self.on_attempt_finished(message)
            return None
        if isinstance(message, TaskLogged):
            self.on_task_logged(message)
            return None
        result: object = None
        if isinstance(message, Dequeued):
            if self.execution.state.current is State.QUEUED:
                self.begin()
            return None
        if isinstance(message, LabelsSet):
            self.set_labels(message.labels)
            return None
        if isinstance(message, TimerFired):
            self.on_timer(message)
        elif isinstance(message, ChildExecutionEnded):
            self.on_child_execution_ended(message)
        elif isinstance(message, SubflowStarted):
            self.on_subflow_started(message)
        elif isinstance(message, WorkingDirectoryPrepared):
            self.on_workdir_prepared(message)
        elif isinstance(message, WorkingDirectoryCollected):
            self.on_workdir_collected(message)
        elif isinstance(message, WorkingDirectoryRemoved):
            self.on_workdir_removed(message)
        elif isinstance(message, Kill):
            result = self.kill()
        elif isinstance(message, Pause):
            result = self.pause()
        elif isinstance(message, Resume):
            result = self.resume(message.inputs)
        elif isinstance(message, Restart):
            result = self.restart()
        elif isinstance(message, Quiesce):
            self.quiescing = True
        self.drain()
        return result

    # -- the end ------------------------------------------------------------------------

    def check_end(self) -> None:
        if self.finished or self.root is None or self.queue:
            return
        if not self.root.done:
            return
        if self.killing:
            if self.running_actors or any(not n.state.terminal for n in self.nodes.values()):
                return
            self.end(State.KILLED)
            return
        if self.decided is None:
            state = self.root.final_state()
            if any(n.data.get("retry_new_execution") for n in self.nodes.values()):
                state = State.RETRIED
            self.decided = state
            if self.flow.after_execution:
                self.after = sequential(self.flow.after_execution, [], [])
                for start in self.after.start():
                    self.later(self.start_after_child, start)
                self.drain()
                return
        if self.after is not None and not self.after.done:
            return
        self.end(self.decided)

    def end(self, state: State) -> None:
        self.finished = True
        outputs = None
        if state in (State.SUCCESS, State.WARNING) and self.flow.outputs:
            outputs, failed = self.flow_outputs()
            if failed:
                state = State.FAILED
        execution = self.execution
        if execution.state.current is State.PAUSED and state is not State.KILLED:
            self.set_execution_state(State.RESTARTED)
            self.set_execution_state(State.RUNNING)
        check_execution_transition(self.execution.state.current, state)
        self.emit(ExecutionEnded, state=state, outputs=outputs)
        if self.on_end is not None:
            self.on_end(self.execution)
        self.stop_self()

    def flow_outputs(self) -> tuple[dict[str, Any] | None, bool]:
        context = dict(self.base_variables)
        outputs: dict[str, Any] = {}
        for output in self.flow.outputs:
            try:
                expressions = self.services.expressions
                if isinstance(output.value, str) and _is_single_expression(output.value):
                    value = expressions.render_typed(output.value, context, self.hooks)
                else:
                    value = expressions.render_value(output.value, context, self.hooks)
                outputs[output.id] = _typed_output(output.type, value)
            except (ExpressionError, ValueError) as exc:
                self.system_log("ERROR", f"flow output {output.id!r}: {exc}")
                return None, True
        return outputs, False

    def set_labels(self, labels: dict[str, str]) -> None:
        """Add or override labels of the execution (the Labels task)."""
        merged = {label.key: label.value for label in self.execution.labels}
        merged.update(labels)
        self.emit(LabelsChanged, labels=list(merged.items()))
        self.base_variables["labels"] = labels_variable(self.execution.labels)


_NO_WAIT_PLACEHOLDER: Any = object()
_FAILED_PLACEHOLDER: Any = object()


def _why(error: Exception) -> str:
    """Why file work failed: Tiercel's own errors say it themselves."""
    return str(error) if isinstance(error, TiercelError) else describe_error(error)


def _child_outputs(child: Execution) -> dict[str, Any]:
    tree = OutputsTree()
    for task_run in child.task_run_list:
        if task_run.outputs:
            tree.put(
                task_run.task_id, (task_run.value,) if task_run.value else (), task_run.outputs
            )
    return tree.root


def _retry_interval(retry: Retry) -> float:
    if isinstance(retry, ConstantRetry | ExponentialRetry):
        return retry.interval.total_seconds()
    return retry.min_interval.total_seconds()


def _is_single_expression(template: str) -> bool:
    stripped = template.strip()
    return stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1


def _typed_output(kind: InputType, value: Any) -> Any:
    if kind is InputType.STRING and not isinstance(value, str):
        if isinstance(value, dict | list):
            return json.dumps(value, separators=(",", ":"), default=str)
        return _text(value)
    if kind in (InputType.STRING, InputType.JSON, InputType.YAML, InputType.FILE):
        return value
    return coerce_type(kind, value)


def copy_execution(execution: Execution) -> Execution:
    """A deep copy of the document (a snapshot that later events do not change)."""
    return msgspec.json.decode(execution_json(execution), type=Execution)


def kind_of(task: Task) -> Kind:
    """How the engine drives a task of this type."""
    if isinstance(task, PauseTask):
        return Kind.PAUSE
    if isinstance(task, Subflow):
        return Kind.SUBFLOW
    if isinstance(task, WaitFor):
        return Kind.WAIT_FOR
    if task.flowable:
        return Kind.FLOWABLE
    return Kind.RUNNABLE
