"""Messages to an ExecutionActor: commands from outside, reports from its task runs."""

from __future__ import annotations

from typing import Any

import msgspec

from actors import control_message
from runtime.model._execution import Execution
from runtime.model._states import State


@control_message
class Kill(msgspec.Struct):
    """Kill the execution: KILLING, then KILLED once every running attempt is cancelled."""


@control_message
class Pause(msgspec.Struct):
    """Pause a running execution: running task runs finish, nothing new starts."""


@control_message
class Resume(msgspec.Struct):
    """Resume a paused execution; ``inputs`` go to the paused Pause task's ``onResume``."""

    inputs: dict[str, Any] = msgspec.field(default_factory=dict)


@control_message
class Restart(msgspec.Struct):
    """Re-run the failed task runs of a finished (or paused) execution, in place."""


@control_message
class AttemptBegan(msgspec.Struct):
    """A task run's attempt started."""

    task_run_id: str
    attempt: int


@control_message
class AttemptFinished(msgspec.Struct):
    """A task run's attempt ended: its state, outputs, metrics and error."""

    task_run_id: str
    attempt: int
    state: State
    outputs: dict[str, Any] | None = None
    metrics: list[tuple[str, str, float, dict[str, str]]] = msgspec.field(default_factory=list)
    error: str | None = None


@control_message
class TaskLogged(msgspec.Struct):
    """A task run's attempt wrote a log line."""

    task_run_id: str
    attempt: int
    level: str
    message: str


@control_message
class TimerFired(msgspec.Struct):
    """A timer the execution armed is due (pause delay or timeout, WaitFor interval)."""

    task_run_id: str
    kind: str
    token: int


@control_message
class ChildExecutionEnded(msgspec.Struct):
    """A subflow execution started by ``task_run_id`` ended."""

    task_run_id: str
    execution: Execution


class CommandResult(msgspec.Struct):
    """What a command did: ``ok``, or why not; ``snapshot`` is the execution right after."""

    ok: bool
    message: str = ""
    snapshot: Execution | None = None


@control_message
class Dequeued(msgspec.Struct):
    """A queued execution may run: a concurrency slot of its flow is free."""


@control_message
class LabelsSet(msgspec.Struct):
    """A Labels task run set these labels on the execution."""

    task_run_id: str
    labels: dict[str, str]


@control_message
class SubflowStarted(msgspec.Struct):
    """A Subflow task run's child execution exists (its id becomes an output at once)."""

    task_run_id: str
    execution_id: str


@control_message
class Quiesce(msgspec.Struct):
    """Start nothing new (a graceful stop): tell the channel once no attempt is running."""


@control_message
class WorkingDirectoryPrepared(msgspec.Struct):
    """A WorkingDirectory's directory exists with its ``inputFiles`` (or ``error`` says why
    not): its tasks may start."""

    task_run_id: str
    error: str | None = None


@control_message
class WorkingDirectoryCollected(msgspec.Struct):
    """A WorkingDirectory's ``outputFiles`` are in internal storage (name to URI), or
    ``error`` says why not."""

    task_run_id: str
    output_files: dict[str, str] | None = None
    error: str | None = None


@control_message
class WorkingDirectoryRemoved(msgspec.Struct):
    """A WorkingDirectory's directory is gone: its ``errors`` and ``finally`` may run."""

    task_run_id: str
