"""The engine's bookkeeping for one task run: where it sits and how it is driven."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from runtime.model._states import State

if TYPE_CHECKING:
    from actors import ActorRef
    from runtime.engine._controller import Controller, Phase
    from runtime.model import Task


class Kind(enum.Enum):
    """How a task run is driven."""

    RUNNABLE = "runnable"
    """Attempts run in a TaskRunActor."""
    FLOWABLE = "flowable"
    """Children run under a Controller."""
    PAUSE = "pause"
    """Waits for a resume (or a delay, or a timeout), then runs its subtasks."""
    SUBFLOW = "subflow"
    """Starts another execution and waits for it."""
    WAIT_FOR = "waitfor"
    """Runs its subtasks again and again until a condition holds."""


class Node:
    """One task run as the engine sees it. The document holds the facts; this, the plan."""

    __slots__ = (
        "attempts",
        "controller",
        "data",
        "id",
        "iteration",
        "kind",
        "parent",
        "phase",
        "ref",
        "slot",
        "state",
        "task",
        "value",
        "value_path",
    )

    def __init__(
        self,
        task_run_id: str,
        task: Task,
        kind: Kind,
        parent: Node | None,
        phase: Phase,
        slot: int,
        value: str | None,
        iteration: int | None,
    ) -> None:
        self.id = task_run_id
        self.task = task
        self.kind = kind
        self.parent = parent
        self.phase = phase
        self.slot = slot
        self.value = value
        self.iteration = iteration
        base = parent.value_path if parent is not None else ()
        self.value_path: tuple[str, ...] = (*base, value) if value is not None else base
        self.state = State.CREATED
        self.attempts = 0
        self.controller: Controller | None = None
        self.ref: ActorRef[Any] | None = None
        self.data: dict[str, Any] = {}
        """Per-kind scratch: pause timers, WaitFor counters, subflow execution id."""

    def __repr__(self) -> str:
        return f"<Node {self.task.id} {self.id} {self.state.value}>"
