"""Plans: the order in which a flowable task run (or the flow) starts its children.

A plan knows only positions. It is told when a child ends and answers with the next
children to start; every call costs O(1) (amortised), whatever the number of children.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Plan(Generic[T]):
    """Base: ``start`` once, then ``ended`` for every child started; ``finished`` at the end."""

    def start(self) -> list[tuple[int, T]]:
        """The first children to start, as (slot, item)."""
        raise NotImplementedError

    def ended(self, slot: int, ok: bool) -> list[tuple[int, T]]:
        """A child ended (``ok`` False: it failed); the children to start next."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """Nothing runs and nothing more will start."""
        raise NotImplementedError

    def halt(self) -> None:
        """Start nothing more (a kill, or a failure elsewhere)."""
        raise NotImplementedError


class SequentialPlan(Plan[T]):
    """One child after the other; a failure stops the sequence."""

    def __init__(self, items: Sequence[T]) -> None:
        self.items = items
        self.position = -1
        self.active = False
        self.halted = False

    def start(self) -> list[tuple[int, T]]:
        return self._next()

    def _next(self) -> list[tuple[int, T]]:
        if self.halted or self.position + 1 >= len(self.items):
            self.active = False
            return []
        self.position += 1
        self.active = True
        return [(self.position, self.items[self.position])]

    def ended(self, slot: int, ok: bool) -> list[tuple[int, T]]:
        self.active = False
        if not ok:
            self.halted = True
            return []
        return self._next()

    @property
    def finished(self) -> bool:
        return not self.active and (self.halted or self.position + 1 >= len(self.items))

    def halt(self) -> None:
        self.halted = True


class GroupPlan(Plan[T]):
    """Groups run side by side, at most ``limit`` at once (0: all); each group in order.

    Parallel is one group per task; EachParallel one per (value, task); ForEach one per
    value, its tasks in order. A failure starts nothing more; running children finish.
    """

    def __init__(self, groups: Sequence[Sequence[T]], limit: int) -> None:
        self.groups = groups
        self.limit = limit
        self.pending: deque[int] = deque(i for i, group in enumerate(groups) if group)
        self.positions: dict[int, int] = {}
        self.running = 0
        self.halted = False
        # slot encodes (group, position) as one int
        self.width = max((len(group) for group in groups), default=1) or 1

    def _slot(self, group: int, position: int) -> int:
        return group * self.width + position

    def _fill(self) -> list[tuple[int, T]]:
        started: list[tuple[int, T]] = []
        while not self.halted and self.pending and (self.limit == 0 or self.running < self.limit):
            group = self.pending.popleft()
            self.positions[group] = 0
            self.running += 1
            started.append((self._slot(group, 0), self.groups[group][0]))
        return started

    def start(self) -> list[tuple[int, T]]:
        return self._fill()

    def ended(self, slot: int, ok: bool) -> list[tuple[int, T]]:
        group, position = divmod(slot, self.width)
        self.running -= 1
        if not ok:
            self.halted = True
        if self.halted:
            self.positions.pop(group, None)
            return []
        if position + 1 < len(self.groups[group]):
            self.positions[group] = position + 1
            self.running += 1
            return [(self._slot(group, position + 1), self.groups[group][position + 1])]
        self.positions.pop(group, None)
        return self._fill()

    @property
    def finished(self) -> bool:
        return self.running == 0 and (self.halted or not self.pending)

    def halt(self) -> None:
        self.halted = True


class DagPlan(Plan[T]):
    """Each child starts once every child it depends on has ended; ``limit`` at once."""

    def __init__(self, items: Sequence[T], depends: Sequence[Sequence[int]], limit: int) -> None:
        self.items = items
        self.limit = limit
        self.waiting_on = [len(set(d)) for d in depends]
        self.dependents: list[list[int]] = [[] for _ in items]
        for index, deps in enumerate(depends):
            for dep in set(deps):
                self.dependents[dep].append(index)
        self.ready: deque[int] = deque(i for i, n in enumerate(self.waiting_on) if n == 0)
        self.running = 0
        self.remaining = len(items)
        self.halted = False

    def _fill(self) -> list[tuple[int, T]]:
        started: list[tuple[int, T]] = []
        while not self.halted and self.ready and (self.limit == 0 or self.running < self.limit):
            index = self.ready.popleft()
            self.running += 1
            started.append((index, self.items[index]))
        return started

    def start(self) -> list[tuple[int, T]]:
        return self._fill()

    def ended(self, slot: int, ok: bool) -> list[tuple[int, T]]:
        self.running -= 1
        self.remaining -= 1
        if not ok:
            self.halted = True
            return []
        for dependent in self.dependents[slot]:
            self.waiting_on[dependent] -= 1
            if self.waiting_on[dependent] == 0:
                self.ready.append(dependent)
        return self._fill()

    @property
    def finished(self) -> bool:
        return self.running == 0 and (self.halted or self.remaining == 0 or not self.ready)

    def halt(self) -> None:
        self.halted = True
