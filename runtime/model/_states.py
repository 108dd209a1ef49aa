"""Execution and task-run states, and the transitions allowed between them."""

from __future__ import annotations

import enum

from runtime.errors import TiercelError


class State(enum.Enum):
    """The states of executions and task runs (Kestra's names and meanings)."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        """Ended: nothing more happens unless the execution is restarted."""
        return self in TERMINAL

    @property
    def created(self) -> bool:
        """Waiting to start (CREATED, or RESTARTED before it runs again)."""
        return self is State.CREATED or self is State.RESTARTED

    @property
    def running(self) -> bool:
        """Running, or being killed."""
        return self is State.RUNNING or self is State.KILLING


TERMINAL = frozenset(
    {
        State.SUCCESS,
        State.WARNING,
        State.FAILED,
        State.KILLED,
        State.CANCELLED,
        State.RETRIED,
        State.SKIPPED,
    }
)

RESTARTABLE = frozenset({State.FAILED, State.KILLED, State.WARNING})
"""Final states an execution can be restarted from (in place, from its failed task runs)."""

_S = State

EXECUTION_TRANSITIONS: dict[State, frozenset[State]] = {
    _S.CREATED: frozenset({_S.RUNNING, _S.QUEUED, _S.CANCELLED, _S.FAILED, _S.KILLED, _S.KILLING}),
    _S.QUEUED: frozenset({_S.RUNNING, _S.CANCELLED, _S.KILLED, _S.KILLING, _S.FAILED}),
    _S.RUNNING: frozenset(
        {_S.PAUSED, _S.KILLING, _S.SUCCESS, _S.WARNING, _S.FAILED, _S.CANCELLED, _S.RETRIED}
    ),
    _S.PAUSED: frozenset({_S.RESTARTED, _S.RUNNING, _S.KILLING, _S.KILLED}),
    _S.RESTARTED: frozenset({_S.RUNNING, _S.KILLING, _S.KILLED}),
    _S.KILLING: frozenset({_S.KILLED}),
    # Terminal states leave only by a restart (or an operator's explicit status change).
    _S.SUCCESS: frozenset({_S.RESTARTED}),
    _S.WARNING: frozenset({_S.RESTARTED}),
    _S.FAILED: frozenset({_S.RESTARTED}),
    _S.KILLED: frozenset({_S.RESTARTED}),
    _S.CANCELLED: frozenset(),
    _S.RETRIED: frozenset(),
    _S.SKIPPED: frozenset(),
    _S.RETRYING: frozenset({_S.RUNNING, _S.KILLING, _S.KILLED}),
}

TASK_RUN_TRANSITIONS: dict[State, frozenset[State]] = {
    _S.CREATED: frozenset(
        {_S.RUNNING, _S.SKIPPED, _S.FAILED, _S.KILLED, _S.CANCELLED, _S.SUCCESS, _S.WARNING}
    ),
    _S.RUNNING: frozenset(
        {
            _S.SUCCESS,
            _S.WARNING,
            _S.FAILED,
            _S.PAUSED,
            _S.KILLING,
            _S.KILLED,
            _S.RETRYING,
            _S.RETRIED,
            _S.CANCELLED,
        }
    ),
    _S.RETRYING: frozenset({_S.RUNNING, _S.KILLED, _S.FAILED}),
    _S.PAUSED: frozenset({_S.RUNNING, _S.KILLED, _S.FAILED, _S.WARNING, _S.SUCCESS, _S.CANCELLED}),
    _S.KILLING: frozenset({_S.KILLED}),
    _S.RESTARTED: frozenset({_S.RUNNING, _S.KILLED, _S.SKIPPED, _S.FAILED}),
    _S.SUCCESS: frozenset({_S.RESTARTED}),
    _S.WARNING: frozenset({_S.RESTARTED}),
    # A restart re-runs failed leaves (RESTARTED) and lets failed flowables re-decide (RUNNING).
    _S.FAILED: frozenset({_S.RESTARTED, _S.RUNNING}),
    _S.KILLED: frozenset({_S.RESTARTED, _S.RUNNING}),
    _S.CANCELLED: frozenset({_S.RESTARTED, _S.RUNNING}),
    _S.SKIPPED: frozenset(),
    _S.RETRIED: frozenset(),
    _S.QUEUED: frozenset({_S.RUNNING, _S.KILLED}),
}


class IllegalTransitionError(TiercelError):
    """Raised when something asks for a state change the transition table forbids.

    It exists so that every state change goes through one check: a bug that would move a
    finished execution back to RUNNING fails loudly instead of corrupting history.
    """

    def __init__(self, what: str, current: State, target: State) -> None:
        super().__init__(f"{what} cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


def check_execution_transition(current: State, target: State) -> None:
    """:raises IllegalTransitionError: if an execution may not go from ``current`` to ``target``."""
    if target not in EXECUTION_TRANSITIONS[current]:
        raise IllegalTransitionError("an execution", current, target)


def check_task_run_transition(current: State, target: State) -> None:
    """:raises IllegalTransitionError: if a task run may not go from ``current`` to ``target``."""
    if target not in TASK_RUN_TRANSITIONS[current]:
        raise IllegalTransitionError("a task run", current, target)


_PRIORITY = (State.KILLED, State.FAILED, State.WARNING, State.PAUSED)


def worst_state(states: list[State] | set[State]) -> State:
    """Kestra's final-state rule: KILLED > FAILED > WARNING > PAUSED > SUCCESS."""
    for state in _PRIORITY:
        if state in states:
            return state
    return State.SUCCESS
