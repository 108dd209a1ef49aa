"""Supervisor: an actor that runs children in its own task group and restarts them by policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors._actor import Actor
from actors._errors import ActorDeadError, RestartIntensityExceededError
from actors._messages import EXIT_KILLED, ActorGaveUp, ActorRestarting, ChildExited, Exit
from actors._policy import TEMPORARY, RestartIntensity, RestartPolicy, RestartWindow
from actors._pool import RunnerPool
from actors._ref import ActorRef, ActorState

M = TypeVar("M")
C = TypeVar("C")


class Supervisor(Actor[M]):
    """An actor with children. A child's exit reaches it as a message, never as an exception.

    For every exit the child's :class:`RestartPolicy` decides: restart after a backoff
    (:meth:`on_child_restarting` is called first), or not (:meth:`on_child_exit`). Restarts
    across all children are bounded by :attr:`intensity`: past it the supervisor fails
    with :class:`RestartIntensityExceededError`, its children are killed, and its own
    supervisor handles that failure.

    When the supervisor stops, it stops its children first and waits for them.
    """

    intensity: RestartIntensity | None = RestartIntensity()
    """Restart budget across children; None for no limit."""

    __slots__ = ("_children", "_pool", "_restart_window", "_tg")

    _tg: TaskGroup | None
    _pool: RunnerPool
    _children: dict[ActorRef[Any], None]
    _restart_window: RestartWindow | None

    # -- public API ---------------------------------------------------------------------

    def spawn(
        self,
        factory: Callable[[], Actor[C]],
        *,
        name: str | None = None,
        policy: RestartPolicy = TEMPORARY,
        mailbox_capacity: int | None = None,
        stash_capacity: int | None = None,
    ) -> ActorRef[C]:
        """Start a child under this supervisor and return its ref.

        :raises ActorDeadError: if this supervisor is not running.
        """
        if getattr(self, "_tg", None) is None or self.ref._state is not ActorState.RUNNING:
            raise ActorDeadError(self.ref.id, "supervisor is not running")
        child = self.system._new_ref(
            self.ref, factory, name, policy, mailbox_capacity, stash_capacity
        )
        self._children[child] = None
        self._pool.submit(child._run_incarnation)
        return child

    def start_task(
        self, func: Callable[..., Awaitable[object]], *args: object, name: str | None = None
    ) -> anyio.CancelScope:
        """Run ``func(*args)`` in this supervisor's task group; cancel it with the scope returned.

        The task ends with the supervisor. An exception from it fails the supervisor.

        :raises ActorDeadError: if this supervisor is not running.
        """
        if getattr(self, "_tg", None) is None:
            raise ActorDeadError(self.ref.id, "supervisor is not running")
        scope = anyio.CancelScope()

        async def run() -> None:
            with scope:
                await func(*args)

        assert self._tg is not None
        self._tg.start_soon(run, name=name or getattr(func, "__name__", None))
        return scope

    def send_after(self, delay: float, message: M) -> anyio.CancelScope:
        """Send ``message`` to this supervisor after ``delay`` seconds on the system's clock.

        Cancel the returned scope to disarm the timer. A timer dies with the supervisor.
        """

        async def fire() -> None:
            await self.clock.sleep(delay)
            await self.ref.tell(message)

        return self.start_task(fire, name=f"timer:{type(message).__name__}")

    @property
    def children(self) -> list[ActorRef[Any]]:
        """Children that are alive or waiting to be restarted."""
        return list(self._children)

    async def on_child_restarting(
        self, child: ActorRef[Any], exit: Exit, attempt: int, delay: float
    ) -> None:
        """Called when ``child`` will be restarted as attempt ``attempt`` after ``delay`` s."""

    async def on_child_exit(self, child: ActorRef[Any], exit: Exit) -> None:
        """Called once when ``child`` ended for good (it will not be restarted)."""

    # -- kernel hooks -------------------------------------------------------------------

    async def _serve(self, ref: ActorRef[M], task_status: TaskStatus[None]) -> None:
        self._children = {}
        self._restart_window = None if self.intensity is None else RestartWindow(self.intensity)
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._pool = RunnerPool(tg)
                try:
                    task_status.started()
                    await self.on_start()
                    await ref._message_loop(self)
                    await self._stop_children()
                except Exception as exc:
                    failure = exc  # re-raised below, outside the task group: no ExceptionGroup
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            for child in list(self._children):
                if child._state is ActorState.RESTARTING:
                    child._die(EXIT_KILLED)
        if failure is not None:
            raise failure

    async def _stop_children(self) -> None:
        children = list(self._children)
        for child in children:
            child.stop()
        for child in children:
            await child.join()

    async def _child_exited(self, notice: ChildExited) -> None:
        child = notice.child
        if child not in self._children:
            return
        if child._state is not ActorState.RESTARTING:
            del self._children[child]
            await self.on_child_exit(child, child._final_exit or notice.exit)
            return
        policy = child._policy
        system = self.system
        now = system.clock.now()
        attempts = child._incarnation + 1
        delay = 0.0
        give_up: str | None = None
        if policy.max_attempts is not None and attempts >= policy.max_attempts:
            give_up = f"max attempts reached ({policy.max_attempts})"
        else:
            delay = policy.backoff.delay(attempts, system.random)
            duration = policy.max_duration
            if duration is not None and now + delay - child._first_start >= duration:
                give_up = f"max duration exceeded ({duration:g} s)"
        if give_up is not None:
            if system._subscribers:
                system.publish(ActorGaveUp(child.id, now, self.ref.id, attempts, give_up))
            child._die(notice.exit)
            del self._children[child]
            await self.on_child_exit(child, notice.exit)
            return
        self._count_restart(now)
        child._incarnation = attempts
        if system._subscribers:
            error = repr(notice.exit.error) if notice.exit.error is not None else None
            system.publish(ActorRestarting(child.id, now, self.ref.id, attempts + 1, delay, error))
        await self.on_child_restarting(child, notice.exit, attempts + 1, delay)
        assert self._tg is not None
        self._tg.start_soon(self._restart_after, child, delay, name=child.id)

    def _count_restart(self, now: float) -> None:
        window, intensity = self._restart_window, self.intensity
        if window is not None and intensity is not None and window.record(now):
            raise RestartIntensityExceededError(
                self.ref.id, intensity.max_restarts, intensity.within
            )

    async def _restart_after(self, child: ActorRef[Any], delay: float) -> None:
        if delay > 0:
            await self.clock.sleep(delay)
        if child._state is ActorState.RESTARTING:
            await child._run_incarnation()
