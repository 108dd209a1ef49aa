"""Events: everything that happens to an execution, as typed past-tense facts.

Every event carries the execution id, the task run id and attempt number it concerns
(None when it concerns the execution as a whole), a per-execution sequence number and a
timestamp. The execution document is a pure fold over them (``runtime.model._fold``).
Events hold plain data only (no cycles), so the garbage collector does not track them
(``gc=False``): an execution keeps its events, and they would slow every collection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from runtime.model._states import State


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="event", rename="camel", gc=False):
    """Fields every event has."""

    execution_id: str
    seq: int
    time: datetime
    task_run_id: str | None = None
    attempt: int | None = None


class ExecutionCreated(Event, frozen=True, kw_only=True, tag="ExecutionCreated"):
    """A new execution of ``namespace.flow_id`` at ``flow_revision``, in CREATED."""

    namespace: str
    flow_id: str
    flow_revision: int
    inputs: dict[str, Any]
    labels: list[tuple[str, str]]
    parent_id: str | None = None
    original_id: str | None = None
    trigger: dict[str, Any] | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class ExecutionStateChanged(Event, frozen=True, kw_only=True, tag="ExecutionStateChanged"):
    """The execution moved to ``state`` (a non-final state, or a restart)."""

    state: State


class ExecutionEnded(Event, frozen=True, kw_only=True, tag="ExecutionEnded"):
    """The execution reached the final ``state``, with its flow ``outputs``."""

    state: State
    outputs: dict[str, Any] | None = None


class LabelsChanged(Event, frozen=True, kw_only=True, tag="LabelsChanged"):
    """The execution's labels are now ``labels``."""

    labels: list[tuple[str, str]]


class TaskRunCreated(Event, frozen=True, kw_only=True, tag="TaskRunCreated"):
    """A task run of ``task_id`` was created (in CREATED), under ``parent_task_run_id``."""

    task_id: str
    parent_task_run_id: str | None = None
    value: str | None = None
    iteration: int | None = None


class TaskRunStateChanged(Event, frozen=True, kw_only=True, tag="TaskRunStateChanged"):
    """The task run moved to ``state``."""

    state: State


class TaskRunsRemoved(Event, frozen=True, kw_only=True, tag="TaskRunsRemoved"):
    """Task runs dropped from the execution (a restart drops error-branch runs)."""

    task_run_ids: list[str]


class AttemptStarted(Event, frozen=True, kw_only=True, tag="AttemptStarted"):
    """Attempt ``attempt`` (1-based) of the task run started (RUNNING)."""


class AttemptEnded(Event, frozen=True, kw_only=True, tag="AttemptEnded"):
    """The attempt ended in ``state``; ``error`` says why when it failed."""

    state: State
    error: str | None = None


class OutputEmitted(Event, frozen=True, kw_only=True, tag="OutputEmitted"):
    """The task run produced ``outputs`` (merged into what it had)."""

    outputs: dict[str, Any]


class MetricEmitted(Event, frozen=True, kw_only=True, tag="MetricEmitted"):
    """A counter or timer entry of the attempt; same name and tags add up."""

    name: str
    type: str
    value: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class LogEmitted(Event, frozen=True, kw_only=True, tag="LogEmitted"):
    """A log line of the execution (of a task run's attempt when those are set)."""

    level: str
    message: str
    task_id: str | None = None


AnyEvent = (
    ExecutionCreated
    | ExecutionStateChanged
    | ExecutionEnded
    | LabelsChanged
    | TaskRunCreated
    | TaskRunStateChanged
    | TaskRunsRemoved
    | AttemptStarted
    | AttemptEnded
    | OutputEmitted
    | MetricEmitted
    | LogEmitted
)

EVENT_DECODER = msgspec.json.Decoder(list[AnyEvent])
EVENT_ENCODER = msgspec.json.Encoder()
