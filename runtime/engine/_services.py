"""What an ExecutionActor needs from the runtime around it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from actors import Clock
from runtime.expressions import ExpressionEngine

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
