"""A pool of runner tasks inside a task group: starting work on an idle runner costs an
Event, not a new task (anyio's ``start_soon`` is the dominant cost of a short-lived actor)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

Job = tuple[Callable[..., Awaitable[object]], tuple[Any, ...]]


class _Runner:
    __slots__ = ("job", "wake")

    def __init__(self) -> None:
        self.wake = anyio.Event()
        self.job: Job | None = None


class RunnerPool:
    """Runs coroutine functions in a task group, reusing up to ``max_idle`` idle tasks.

    Each runner is a task of the group, so the group's structure holds: cancelling the
    group cancels whatever the runners are doing. A job must not raise (other than a
    cancellation): an exception would end the runner and fail the group, as with
    ``start_soon``.
    """

    __slots__ = ("_idle", "_max_idle", "_task_group")

    def __init__(self, task_group: TaskGroup, max_idle: int = 64) -> None:
        self._task_group = task_group
        self._max_idle = max_idle
        self._idle: list[_Runner] = []

    def submit(self, func: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Run ``func(*args)`` on an idle runner, or on a new one."""
        if self._idle:
            runner = self._idle.pop()
            runner.job = (func, args)
            runner.wake.set()
            return
        self._task_group.start_soon(self._run, func, args)

    async def _run(self, func: Callable[..., Awaitable[object]], args: tuple[Any, ...]) -> None:
        while True:
            await func(*args)
            if len(self._idle) >= self._max_idle:
                return
            runner = _Runner()
            self._idle.append(runner)
            await runner.wake.wait()
            assert runner.job is not None
            func, args = runner.job
