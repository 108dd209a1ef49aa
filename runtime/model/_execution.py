"""The execution document: the JSON shape Kestra's API uses (camelCase), kept in memory.

These Structs are mutable on purpose: the fold (``runtime.model._fold``) applies each
event to them in place, which keeps the cost of an event constant however large the
execution grows. Nothing else mutates them.

They are trees of plain data (no Struct refers back to another), so they are declared
``gc=False``: the cycle collector does not track them, and a large execution no longer
makes every collection slower.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from runtime.model._common import enc_hook
from runtime.model._states import State


class History(msgspec.Struct, rename="camel", gc=False):
    """One entry of a state history."""

    state: State
    date: datetime


class StateInfo(msgspec.Struct, rename="camel", gc=False):
    """Current state, its history, and the dates derived from it."""

    current: State
    histories: list[History]
    start_date: datetime
    end_date: datetime | None = None
    duration: float | None = None
    """Seconds from the first to the last history entry, once terminal."""

    @classmethod
    def new(cls, state: State, date: datetime) -> StateInfo:
        """A state info whose history starts with ``state`` at ``date``."""
        return cls(state, [History(state, date)], date)

    def move(self, state: State, date: datetime) -> None:
        """Append ``state`` at ``date`` (dates never go back) and update the derived fields."""
        if date < self.histories[-1].date:
            date = self.histories[-1].date
        self.current = state
        self.histories.append(History(state, date))
        if state.terminal:
            self.end_date = date
            self.duration = (date - self.start_date).total_seconds()
        else:
            self.end_date = None
            self.duration = None


class Metric(msgspec.Struct, rename="camel", gc=False):
    """A counter or timer entry (timers in seconds), with tags."""

    name: str
    type: str
    value: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class Attempt(msgspec.Struct, rename="camel", gc=False):
    """One attempt of a task run."""

    state: StateInfo
    metrics: list[Metric] = msgspec.field(default_factory=list)


class TaskRun(msgspec.Struct, rename="camel", gc=False):
    """One run of one task inside an execution."""

    id: str
    execution_id: str
    namespace: str
    flow_id: str
    task_id: str
    state: StateInfo
    parent_task_run_id: str | None = None
    value: str | None = None
    iteration: int | None = None
    outputs: dict[str, Any] | None = None
    attempts: list[Attempt] | None = None


class Label(msgspec.Struct, gc=False):
    """A label: key and value."""

    key: str
    value: str


class Execution(msgspec.Struct, rename="camel", gc=False):
    """A single run of a flow."""

    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: StateInfo
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    labels: list[Label] = msgspec.field(default_factory=list)
    task_run_list: list[TaskRun] = msgspec.field(default_factory=list)
    parent_id: str | None = None
    original_id: str | None = None
    trigger: dict[str, Any] | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


_ENCODER = msgspec.json.Encoder(enc_hook=enc_hook)


def execution_json(execution: Execution) -> bytes:
    """The execution as JSON, in the shape DESIGN.md gives."""
    return _ENCODER.encode(execution)


def execution_dict(execution: Execution) -> dict[str, Any]:
    """The execution as plain JSON-compatible data."""
    result: dict[str, Any] = msgspec.json.decode(execution_json(execution))
    return result
