"""A controller runs a flowable task run's children (or the flow's) through three phases:
the main plan, then ``errors`` if a main child failed, then ``finally`` whatever happened."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import NamedTuple

from runtime.engine._plans import Plan, SequentialPlan
from runtime.model import Task
from runtime.model._states import State, worst_state


class Phase(enum.Enum):
    """Which branch of a flowable is running."""

    MAIN = "main"
    ERRORS = "errors"
    FINALLY = "finally"
    DONE = "done"


class Child(NamedTuple):
    """A child to create: the task, its loop value, its WaitFor iteration."""

    task: Task
    value: str | None = None
    iteration: int | None = None


class Start(NamedTuple):
    """A child to start now, with where it sits (phase and slot) for when it ends."""

    child: Child
    phase: Phase
    slot: int


_BAD = frozenset({State.FAILED, State.KILLED})


class Controller:
    """Phases and final state of one flowable task run (or of the flow itself)."""

    def __init__(
        self,
        main: Plan[Child],
        errors: Sequence[Task] = (),
        finally_: Sequence[Task] = (),
    ) -> None:
        self.main = main
        self.errors = [Child(task) for task in errors]
        self.finally_ = [Child(task) for task in finally_]
        self.phase = Phase.MAIN
        self.plan: Plan[Child] = main
        self.main_states: set[State] = set()
        self.finally_states: set[State] = set()
        self.main_failed = False
        self.halted = False

    def start(self) -> list[Start]:
        """The first children to start (possibly none: then :attr:`done` may be true)."""
        return self._wrap(self.plan.start()) or self._advance()

    def ended(self, phase: Phase, slot: int, state: State) -> list[Start]:
        """A child in ``phase`` at ``slot`` ended in ``state``; the children to start next."""
        if phase is not self.phase:
            return []
        ok = state not in _BAD
        if phase is Phase.MAIN:
            self.main_states.add(state)
            if state is State.FAILED:
                self.main_failed = True
        elif phase is Phase.FINALLY:
            self.finally_states.add(state)
        started = self._wrap(self.plan.ended(slot, ok))
        if self.plan.finished:
            return started + self._advance()
        return started

    def halt(self) -> None:
        """Start nothing more in any phase (a kill)."""
        self.halted = True
        self.plan.halt()

    @property
    def done(self) -> bool:
        """Every phase is over."""
        return self.phase is Phase.DONE

    def final_state(self) -> State:
        """KILLED > FAILED > WARNING > PAUSED > SUCCESS over the main and finally children."""
        return worst_state(self.main_states | self.finally_states)

    def _wrap(self, items: list[tuple[int, Child]]) -> list[Start]:
        return [Start(child, self.phase, slot) for slot, child in items]

    def _advance(self) -> list[Start]:
        while not self.halted:
            if self.phase is Phase.MAIN and self.main_failed and self.errors:
                self.phase = Phase.ERRORS
                self.plan = SequentialPlan(self.errors)
            elif self.phase in (Phase.MAIN, Phase.ERRORS) and self.finally_:
                self.phase = Phase.FINALLY
                self.plan = SequentialPlan(self.finally_)
            else:
                break
            started = self._wrap(self.plan.start())
            if started:
                return started
        self.phase = Phase.DONE
        return []
