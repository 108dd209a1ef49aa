"""Clocks: the one place the kernel (and everything built on it) reads time and waits.

:class:`RealClock` is the event loop's monotonic clock. :class:`VirtualClock` is a clock
that tests drive, like trio's ``MockClock``: with ``autojump`` it jumps straight to the
next deadline as soon as every task is blocked, so a 30-second backoff takes no real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta

import anyio


class Clock(ABC):
    """Monotonic time for deadlines, wall time for timestamps, and ways to wait."""

    @abstractmethod
    def now(self) -> float:
        """Monotonic seconds; only differences between two readings mean anything."""

    @abstractmethod
    def utcnow(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (at least one checkpoint)."""

    @abstractmethod
    def fail_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        """Context manager that cancels its body after ``seconds`` and raises TimeoutError."""

    async def sleep_until(self, deadline: float) -> None:
        """Wait until :meth:`now` reaches ``deadline``."""
        await self.sleep(max(0.0, deadline - self.now()))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run whatever the clock needs in the background (nothing, for a real clock)."""
        yield


class RealClock(Clock):
    """The event loop's clock. This is the default everywhere."""

    def now(self) -> float:
        return anyio.current_time()

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def fail_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        return anyio.fail_after(seconds)


class _Timer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], object]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False


class VirtualClock(Clock):
    """A clock whose time moves only when told to, or (``autojump``) when all tasks wait.

    Time starts at ``start`` seconds; :meth:`utcnow` is ``epoch`` plus that. With
    ``autojump=True`` (the default) the clock's :meth:`running` context watches the event
    loop and, whenever every other task is blocked, moves time to the earliest pending
    deadline. Without it, call :meth:`advance`.

    A task blocked on something outside the loop (a thread, a subprocess) counts as
    blocked, as in trio's autojump: pass ``autojump_threshold`` (real seconds of idleness
    required before a jump) when a test mixes virtual time with real I/O.
    """

    def __init__(
        self,
        *,
        start: float = 0.0,
        epoch: datetime | None = None,
        autojump: bool = True,
        autojump_threshold: float = 0.0,
    ) -> None:
        self._now = start
        self._epoch = epoch or datetime(2026, 1, 1, tzinfo=UTC)
        self.autojump = autojump
        self.autojump_threshold = autojump_threshold
        self._timers: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._timer_added: anyio.Event | None = None

    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._epoch + timedelta(seconds=self._now)

    @property
    def pending(self) -> int:
        """Number of timers not yet fired or cancelled."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def call_at(self, deadline: float, callback: Callable[[], object]) -> _Timer:
        """Run ``callback`` (synchronously) when time reaches ``deadline``."""
        timer = _Timer(deadline, callback)
        heapq.heappush(self._timers, (deadline, next(self._seq), timer))
        if self._timer_added is not None:
            self._timer_added.set()
            self._timer_added = None
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        timer = self.call_at(self._now + seconds, event.set)
        try:
            await event.wait()
        finally:
            timer.cancelled = True

    @contextmanager
    def _fail_after(self, seconds: float) -> Iterator[anyio.CancelScope]:
        fired = False
        with anyio.CancelScope() as scope:

            def expire() -> None:
                nonlocal fired
                fired = True
                scope.cancel()

            timer = self.call_at(self._now + seconds, expire)
            try:
                yield scope
            finally:
                timer.cancelled = True
        if fired and scope.cancelled_caught:
            raise TimeoutError

    def fail_after(self, seconds: float) -> AbstractContextManager[anyio.CancelScope]:
        return self._fail_after(seconds)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing timers in deadline order.

        Tasks woken by one timer run before the next timer fires.
        """
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            self._fire_next()
            await _let_ready_tasks_run()
        self._now = max(self._now, target)
        await _let_ready_tasks_run()

    def _fire_next(self) -> None:
        deadline, _, timer = heapq.heappop(self._timers)
        if timer.cancelled:
            return
        self._now = max(self._now, deadline)
        timer.cancelled = True
        timer.callback()
        # Fire everything due at the same instant together.
        while self._timers and self._timers[0][0] <= self._now:
            _, _, same = heapq.heappop(self._timers)
            if not same.cancelled:
                same.cancelled = True
                same.callback()

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if not self.autojump:
            yield
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._autojump_loop)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _autojump_loop(self) -> None:
        while True:
            self._drop_cancelled()
            if not self._timers:
                self._timer_added = anyio.Event()
                await self._timer_added.wait()
                continue
            await _wait_all_tasks_blocked()
            if self.autojump_threshold > 0:
                await anyio.sleep(self.autojump_threshold)
                await _wait_all_tasks_blocked()
            self._drop_cancelled()
            if self._timers:
                self._fire_next()


async def _let_ready_tasks_run() -> None:
    await _wait_all_tasks_blocked()


async def _wait_all_tasks_blocked() -> None:
    """Return once every other task is waiting on something (asyncio: no sleep(0.1) polls)."""
    try:
        this = asyncio.current_task()
    except RuntimeError:  # another anyio backend (trio): use its own detector
        await anyio.wait_all_tasks_blocked()
        return
    while True:
        await asyncio.sleep(0)
        for task in asyncio.all_tasks():
            if task is this:
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                break
        else:
            return
