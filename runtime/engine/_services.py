"""What an ExecutionActor needs from the runtime around it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from actors import Clock
from runtime.expressions import ExpressionEngine
from runtime.model._states import State

if TYPE_CHECKING:
    from runtime.model import Flow
    from runtime.model._events import Event
    from runtime.model._execution import Execution
    from runtime.tasks._api import StateStore


class EventSink(Protocol):
    """Where an execution's events go (the store, and whoever follows the execution)."""

    def publish(self, event: Event) -> None:
        """Take one event, in order."""
        ...


class ChildStarter(Protocol):
    """Starts a subflow's execution on behalf of a Subflow task run."""

    async def __call__(
        self,
        parent: Execution,
        task_run_id: str,
        namespace: str,
        flow_id: str,
        revision: int | None,
        inputs: dict[str, Any],
        labels: list[tuple[str, str]],
        wait: bool,
    ) -> str:
        """Start it; return the child execution's id."""
        ...


class AttemptRequest(msgspec.Struct, kw_only=True):
    """One attempt of a runnable task run, as a worker elsewhere needs it: which task of
    which flow revision, and the variables its expressions see."""

    execution_id: str
    namespace: str
    flow_id: str
    flow_revision: int
    task_id: str
    task_run_id: str
    value: str | None
    attempt: int
    variables: dict[str, Any]
    error_logs: list[dict[str, Any]] = msgspec.field(default_factory=list)


class AttemptOutcome(msgspec.Struct, kw_only=True):
    """How an attempt ended, what it produced and what it asked for."""

    state: State
    outputs: dict[str, Any] | None = None
    metrics: list[tuple[str, str, float, dict[str, str]]] = msgspec.field(default_factory=list)
    error: str | None = None
    labels: dict[str, str] | None = None


class AttemptRunner(Protocol):
    """Runs attempts somewhere else (the workers of a cluster) instead of in this process."""

    def accepts(self, request: AttemptRequest) -> bool:
        """Whether this attempt may run elsewhere (else it runs here)."""
        ...

    async def run(
        self,
        request: AttemptRequest,
        on_log: Callable[[str, str], None],
        durable: Callable[[], Awaitable[None]],
    ) -> AttemptOutcome:
        """Run it and return its outcome; ``on_log(level, message)`` for each log line.

        Before the attempt leaves this process, ``durable()`` must have returned (after
        this call began): it makes the events appended so far durable, so a new owner of
        the execution knows the task run and finds the attempt (by task run and number)
        instead of running the task again under a new task run. One call may cover many
        attempts (a batch).

        Cancelling the call only stops waiting (an executor stopping or giving an execution
        up leaves its attempts running for the next owner); :meth:`kill` kills.
        """
        ...

    async def kill(self, task_run_id: str) -> None:
        """Kill the attempts of a task run (queued ones never start)."""
        ...


@dataclass
class Services:
    """The runtime's services, shared by every execution."""

    clock: Clock
    expressions: ExpressionEngine
    data_dir: Path
    state_store: Callable[[str], StateStore]
    start_child: ChildStarter
    kill_execution: Callable[[str], Awaitable[None]]
    resume_execution: Callable[[str, dict[str, Any]], Awaitable[None]]
    watch_child: Callable[[str, str, str], Awaitable[None]]
    resolve_flow: Callable[[str, str, int | None], Flow | None]
    envs: Mapping[str, str] = field(default_factory=dict)
    trace_logs: bool = False
    attempt_runner: AttemptRunner | None = None
    """Where runnable attempts run: None for this process (the default)."""
    durable: Callable[[], Awaitable[None]] | None = None
    """Returns once every event appended so far is durable (the store's flush); given to
    :meth:`AttemptRunner.run`."""
