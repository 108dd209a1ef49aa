"""The fold: events in, execution document out. The one place the document changes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from runtime.errors import TiercelError
from runtime.model._events import (
    AnyEvent,
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
from runtime.model._execution import Attempt, Execution, Label, Metric, StateInfo, TaskRun
from runtime.model._states import State


class FoldError(TiercelError):
    """An event that does not fit the document (wrong execution, unknown task run...)."""


class ExecutionFold:
    """An execution document with an index of its task runs, built by applying events.

    ``apply`` costs the same for the first and the ten-thousandth task run.
    """

    __slots__ = ("_by_id", "execution", "last_seq")

    def __init__(self) -> None:
        self.execution: Execution | None = None
        self._by_id: dict[str, TaskRun] = {}
        self.last_seq = 0

    @classmethod
    def load(cls, execution: Execution, last_seq: int) -> ExecutionFold:
        """A fold that starts from a snapshot taken after event ``last_seq``."""
        state = cls()
        state.execution = execution
        state._by_id = {task_run.id: task_run for task_run in execution.task_run_list}
        state.last_seq = last_seq
        return state

    def task_run(self, task_run_id: str) -> TaskRun:
        """The task run with this id.

        :raises FoldError: if there is none.
        """
        try:
            return self._by_id[task_run_id]
        except KeyError:
            raise FoldError(f"unknown task run {task_run_id!r}") from None

    def apply(self, event: Event) -> None:
        """Apply one event. Events already applied (by sequence number) are ignored.

        :raises FoldError: if the event does not fit this execution.
        """
        if event.seq <= self.last_seq:
            return  # replaying the same events twice gives the same document
        _HANDLERS[type(event)](self, event)
        self.last_seq = event.seq

    def apply_all(self, events: Iterable[Event]) -> None:
        """Apply events in order."""
        for event in events:
            self.apply(event)

    # -- handlers -----------------------------------------------------------------------

    def _doc(self, event: Event) -> Execution:
        execution = self.execution
        if execution is None:
            raise FoldError(f"event {type(event).__name__} before ExecutionCreated")
        if event.execution_id != execution.id:
            raise FoldError(f"event of execution {event.execution_id} applied to {execution.id}")
        return execution

    def _created(self, event: ExecutionCreated) -> None:
        if self.execution is not None:
            raise FoldError(f"execution {event.execution_id} created twice")
        self.execution = Execution(
            id=event.execution_id,
            namespace=event.namespace,
            flow_id=event.flow_id,
            flow_revision=event.flow_revision,
            state=StateInfo.new(State.CREATED, event.time),
            inputs=event.inputs,
            labels=[Label(k, v) for k, v in event.labels],
            parent_id=event.parent_id,
            original_id=event.original_id or event.execution_id,
            trigger=event.trigger,
            metadata=dict(event.metadata),
        )

    def _execution_state(self, event: ExecutionStateChanged) -> None:
        self._doc(event).state.move(event.state, event.time)

    def _ended(self, event: ExecutionEnded) -> None:
        execution = self._doc(event)
        execution.outputs = event.outputs
        execution.state.move(event.state, event.time)

    def _labels(self, event: LabelsChanged) -> None:
        self._doc(event).labels = [Label(k, v) for k, v in event.labels]

    def _task_run_created(self, event: TaskRunCreated) -> None:
        execution = self._doc(event)
        assert event.task_run_id is not None
        task_run = TaskRun(
            id=event.task_run_id,
            execution_id=execution.id,
            namespace=execution.namespace,
            flow_id=execution.flow_id,
            task_id=event.task_id,
            state=StateInfo.new(State.CREATED, event.time),
            parent_task_run_id=event.parent_task_run_id,
            value=event.value,
            iteration=event.iteration,
        )
        execution.task_run_list.append(task_run)
        self._by_id[task_run.id] = task_run

    def _run(self, event: Event) -> TaskRun:
        self._doc(event)
        assert event.task_run_id is not None
        return self.task_run(event.task_run_id)

    def _task_run_state(self, event: TaskRunStateChanged) -> None:
        self._run(event).state.move(event.state, event.time)

    def _removed(self, event: TaskRunsRemoved) -> None:
        execution = self._doc(event)
        gone = set(event.task_run_ids)
        execution.task_run_list = [t for t in execution.task_run_list if t.id not in gone]
        for task_run_id in gone:
            self._by_id.pop(task_run_id, None)

    def _attempt_started(self, event: AttemptStarted) -> None:
        task_run = self._run(event)
        attempts = task_run.attempts
        if attempts is None:
            attempts = task_run.attempts = []
        attempts.append(Attempt(StateInfo.new(State.RUNNING, event.time)))
        if task_run.state.current is not State.RUNNING:
            task_run.state.move(State.RUNNING, event.time)

    def _attempt(self, event: Event) -> Attempt:
        task_run = self._run(event)
        if not task_run.attempts or event.attempt is None:
            raise FoldError(f"task run {task_run.id} has no attempt {event.attempt}")
        return task_run.attempts[event.attempt - 1]

    def _attempt_ended(self, event: AttemptEnded) -> None:
        self._attempt(event).state.move(event.state, event.time)

    def _output(self, event: OutputEmitted) -> None:
        task_run = self._run(event)
        if task_run.outputs is None:
            task_run.outputs = dict(event.outputs)
        else:
            task_run.outputs.update(event.outputs)

    def _metric(self, event: MetricEmitted) -> None:
        attempt = self._attempt(event)
        for metric in attempt.metrics:
            if (
                metric.name == event.name
                and metric.type == event.type
                and metric.tags == event.tags
            ):
                metric.value += event.value
                return
        attempt.metrics.append(Metric(event.name, event.type, event.value, dict(event.tags)))


def _ignore(fold: ExecutionFold, event: AnyEvent) -> None:
    """Logs are kept in the event log and the log store, not in the document."""


_HANDLERS: dict[type[Event], Callable[[ExecutionFold, Any], None]] = {
    ExecutionCreated: ExecutionFold._created,
    ExecutionStateChanged: ExecutionFold._execution_state,
    ExecutionEnded: ExecutionFold._ended,
    LabelsChanged: ExecutionFold._labels,
    TaskRunCreated: ExecutionFold._task_run_created,
    TaskRunStateChanged: ExecutionFold._task_run_state,
    TaskRunsRemoved: ExecutionFold._removed,
    AttemptStarted: ExecutionFold._attempt_started,
    AttemptEnded: ExecutionFold._attempt_ended,
    OutputEmitted: ExecutionFold._output,
    MetricEmitted: ExecutionFold._metric,
    LogEmitted: _ignore,
}
"""One handler per event type, shared by every fold (a dict per fold would cost memory)."""


def fold(events: Iterable[Event]) -> Execution:
    """The execution document the events describe.

    :raises FoldError: if the events do not start with ExecutionCreated or do not fit.
    """
    state = ExecutionFold()
    state.apply_all(events)
    if state.execution is None:
        raise FoldError("no ExecutionCreated event")
    return state.execution
