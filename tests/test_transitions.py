"""The transition tables, and a stateful test of the document they protect."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from runtime.engine import (
    EXECUTION_TRANSITIONS,
    TASK_RUN_TRANSITIONS,
    AttemptEnded,
    AttemptStarted,
    ExecutionCreated,
    ExecutionFold,
    ExecutionStateChanged,
    IllegalTransitionError,
    State,
    StateInfo,
    TaskRunCreated,
    TaskRunStateChanged,
    worst_state,
)
from runtime.model._states import check_execution_transition, check_task_run_transition

TERMINAL = [s for s in State if s.terminal]


def test_every_state_has_a_row_in_both_tables() -> None:
    assert set(EXECUTION_TRANSITIONS) == set(State)
    assert set(TASK_RUN_TRANSITIONS) == set(State)


@pytest.mark.parametrize("state", TERMINAL)
def test_terminal_executions_leave_only_by_a_restart(state: State) -> None:
    assert EXECUTION_TRANSITIONS[state] <= {State.RESTARTED}


@pytest.mark.parametrize("state", TERMINAL)
def test_terminal_task_runs_leave_only_to_run_again(state: State) -> None:
    assert TASK_RUN_TRANSITIONS[state] <= {State.RESTARTED, State.RUNNING}


def test_illegal_transitions_raise_a_typed_error() -> None:
    with pytest.raises(IllegalTransitionError, match="cannot go from SUCCESS to RUNNING"):
        check_execution_transition(State.SUCCESS, State.RUNNING)
    with pytest.raises(IllegalTransitionError):
        check_task_run_transition(State.SKIPPED, State.RUNNING)
    check_execution_transition(State.PAUSED, State.RESTARTED)


def test_final_state_priority() -> None:
    assert worst_state({State.SUCCESS, State.WARNING, State.FAILED, State.KILLED}) is State.KILLED
    assert worst_state({State.SUCCESS, State.WARNING, State.FAILED}) is State.FAILED
    assert worst_state({State.SUCCESS, State.PAUSED, State.WARNING}) is State.WARNING
    assert worst_state({State.SUCCESS, State.PAUSED}) is State.PAUSED
    assert worst_state({State.SUCCESS, State.SKIPPED}) is State.SUCCESS


def test_state_info_dates_never_go_back() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    info = StateInfo.new(State.CREATED, start)
    info.move(State.RUNNING, start - timedelta(seconds=5))
    info.move(State.SUCCESS, start + timedelta(seconds=2))
    assert [h.date for h in info.histories] == [start, start, start + timedelta(seconds=2)]
    assert info.duration == 2.0


class ExecutionDocument(RuleBasedStateMachine):
    """Random state changes requested through the tables, applied through the fold."""

    def __init__(self) -> None:
        super().__init__()
        self.fold = ExecutionFold()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.seq = 0
        self.attempts: dict[str, int] = {}
        self.apply(
            ExecutionCreated, namespace="n", flow_id="f", flow_revision=1, inputs={}, labels=[]
        )

    def apply(self, kind: type, task_run_id: str | None = None, **fields: object) -> None:
        self.seq += 1
        self.fold.apply(
            kind(execution_id="e", seq=self.seq, time=self.now, task_run_id=task_run_id, **fields)
        )

    @rule(seconds=st.integers(-30, 30))
    def clock_moves(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(wanted=st.sampled_from(list(State)))
    def execution_state(self, wanted: State) -> None:
        assert self.fold.execution is not None
        current = self.fold.execution.state.current
        if wanted in EXECUTION_TRANSITIONS[current]:
            check_execution_transition(current, wanted)
            self.apply(ExecutionStateChanged, state=wanted)
        else:
            with pytest.raises(IllegalTransitionError):
                check_execution_transition(current, wanted)

    @rule()
    def create_task_run(self) -> None:
        task_run_id = f"t{len(self.attempts)}"
        self.attempts[task_run_id] = 0
        self.apply(TaskRunCreated, task_run_id, task_id="task")

    @rule(data=st.data(), wanted=st.sampled_from(list(State)))
    def task_run_state(self, data: st.DataObject, wanted: State) -> None:
        if not self.attempts:
            return
        task_run_id = data.draw(st.sampled_from(sorted(self.attempts)))
        current = self.fold.task_run(task_run_id).state.current
        if wanted in TASK_RUN_TRANSITIONS[current]:
            self.apply(TaskRunStateChanged, task_run_id, state=wanted)
        else:
            with pytest.raises(IllegalTransitionError):
                check_task_run_transition(current, wanted)

    @rule(data=st.data())
    def attempt(self, data: st.DataObject) -> None:
        if not self.attempts:
            return
        task_run_id = data.draw(st.sampled_from(sorted(self.attempts)))
        task_run = self.fold.task_run(task_run_id)
        if task_run.state.current not in (State.CREATED, State.RESTARTED, State.RETRYING):
            return
        self.attempts[task_run_id] += 1
        number = self.attempts[task_run_id]
        self.apply(AttemptStarted, task_run_id, attempt=number)
        end = data.draw(st.sampled_from([State.SUCCESS, State.FAILED, State.KILLED]))
        self.apply(AttemptEnded, task_run_id, attempt=number, state=end)

    @invariant()
    def histories_never_go_back_and_end_where_they_are(self) -> None:
        execution = self.fold.execution
        assert execution is not None
        infos = [execution.state] + [t.state for t in execution.task_run_list]
        for task_run in execution.task_run_list:
            infos += [a.state for a in task_run.attempts or ()]
        for info in infos:
            dates = [h.date for h in info.histories]
            assert dates == sorted(dates)
            assert info.current is info.histories[-1].state

    @invariant()
    def terminal_states_are_left_only_by_a_restart(self) -> None:
        execution = self.fold.execution
        assert execution is not None
        for earlier, later in itertools.pairwise(execution.state.histories):
            if earlier.state.terminal:
                assert later.state is State.RESTARTED

    @invariant()
    def attempts_only_grow(self) -> None:
        execution = self.fold.execution
        assert execution is not None
        for task_run in execution.task_run_list:
            assert len(task_run.attempts or ()) == self.attempts[task_run.id]


ExecutionDocument.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
TestExecutionDocument = ExecutionDocument.TestCase
