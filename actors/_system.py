"""ActorSystem: owns the root task group, the clock, the event stream and dead letters."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import structlog

from actors._actor import Actor
from actors._clock import Clock, RealClock
from actors._errors import ActorSystemClosedError
from actors._messages import DeadLetter, Exit, KernelEvent
from actors._policy import TEMPORARY, RestartPolicy
from actors._ref import ActorRef, ActorState
from actors._supervisor import Supervisor

C = TypeVar("C")

EventListener = Callable[[KernelEvent], None]


class _Root(Supervisor[object]):
    """Parent of the actors spawned on the system itself. It never gives up on restarts."""

    intensity = None

    async def on_child_exit(self, child: ActorRef[Any], exit: Exit) -> None:
        if exit.failed:
            self.log.error("top-level actor failed", child=child.id, error=repr(exit.error))


class ActorSystem:
    """The home of a tree of actors. Use it as an async context manager.

    ``shutdown`` (also run on leaving the ``async with`` block normally) stops every actor
    gracefully, waits up to ``shutdown_timeout`` seconds of real time, then kills what is
    left. It is idempotent and safe to call from several tasks. Leaving the block with an
    exception kills every actor at once.
    """

    def __init__(
        self,
        name: str = "actors",
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        shutdown_timeout: float = 10.0,
        mailbox_capacity: int = 1024,
        stash_capacity: int = 1024,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.random = random.Random(seed)
        self.shutdown_timeout = shutdown_timeout
        self.mailbox_capacity = mailbox_capacity
        self.stash_capacity = stash_capacity
        self.dead_letters = 0
        self.log: structlog.typing.FilteringBoundLogger = structlog.get_logger("actors").bind(
            system=name
        )
        self._subscribers: list[EventListener] = []
        self._ids = itertools.count(1)
        self._stack: AsyncExitStack | None = None
        self._root: ActorRef[object] | None = None
        self._closing = False
        self._shutdown_done = anyio.Event()

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None or self._closing:
            raise ActorSystemClosedError(f"actor system {self.name!r} was already started")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await stack.enter_async_context(self.clock.running())
            tg = await stack.enter_async_context(anyio.create_task_group())
            self._root = self._new_ref(None, _Root, "root", TEMPORARY, None, None)
            await tg.start(self._root._run_incarnation, name=self._root.id)
        except BaseException:
            await stack.__aexit__(None, None, None)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.shutdown()
        else:
            self._closing = True
            self._shutdown_done.set()
            if self._root is not None:
                self._root.kill()
        assert self._stack is not None
        # The body's own exception is not passed in: it propagates as it is, never wrapped
        # in an ExceptionGroup by the root task group.
        await self._stack.__aexit__(None, None, None)

    # A deadline on a shared operation, not on the caller's wait: fail_after would not do.
    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop every actor (children before parents), killing what outlives ``timeout``.

        Idempotent: a second call waits for the first to finish.
        """
        if self._closing:
            await self._shutdown_done.wait()
            return
        self._closing = True
        try:
            root = self._root
            if root is None:
                return
            root.stop()
            limit = self.shutdown_timeout if timeout is None else timeout
            with anyio.move_on_after(limit):
                await root.join()
            if root.is_alive:
                self.log.warning(
                    "shutdown deadline passed; killing remaining actors", timeout=limit
                )
                root.kill()
                await root.join()
        finally:
            self._shutdown_done.set()

    @property
    def closing(self) -> bool:
        """True once shutdown has begun."""
        return self._closing

    # -- spawning -----------------------------------------------------------------------

    def spawn(
        self,
        factory: Callable[[], Actor[C]],
        *,
        name: str | None = None,
        policy: RestartPolicy = TEMPORARY,
        mailbox_capacity: int | None = None,
        stash_capacity: int | None = None,
    ) -> ActorRef[C]:
        """Start a top-level actor.

        :raises ActorSystemClosedError: if the system is not running or shutting down.
        """
        root = self._root
        if root is None or self._closing or root._state is not ActorState.RUNNING:
            raise ActorSystemClosedError(f"actor system {self.name!r} is not running")
        actor = root._actor
        assert isinstance(actor, _Root)
        return actor.spawn(
            factory,
            name=name,
            policy=policy,
            mailbox_capacity=mailbox_capacity,
            stash_capacity=stash_capacity,
        )

    def _new_ref(
        self,
        parent: ActorRef[Any] | None,
        factory: Callable[[], Actor[C]],
        name: str | None,
        policy: RestartPolicy,
        mailbox_capacity: int | None,
        stash_capacity: int | None,
    ) -> ActorRef[C]:
        label = name or getattr(factory, "__name__", None) or type(factory).__name__
        return ActorRef(
            self,
            parent,
            factory,
            label,
            f"{label}#{next(self._ids)}",
            policy,
            self.mailbox_capacity if mailbox_capacity is None else mailbox_capacity,
            self.stash_capacity if stash_capacity is None else stash_capacity,
        )

    # -- events -------------------------------------------------------------------------

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every kernel event; returns a function that unsubscribes.

        Listeners run synchronously in the actor's task and must not block; an exception
        from one is logged and does not reach the actor.
        """
        self._subscribers.append(listener)

        def unsubscribe() -> None:
            if listener in self._subscribers:
                self._subscribers.remove(listener)

        return unsubscribe

    def publish(self, event: KernelEvent) -> None:
        """Hand ``event`` to every listener."""
        for listener in tuple(self._subscribers):
            try:
                listener(event)
            except Exception:
                self.log.exception("event listener failed", listener=repr(listener))

    def _dead_letters(self, actor_id: str, messages: Sequence[object], reason: str) -> None:
        """Count and report messages that cannot be delivered (one log line per batch)."""
        self.dead_letters += len(messages)
        self.log.debug(
            "dead letters",
            actor_id=actor_id,
            count=len(messages),
            message_type=type(messages[0]).__name__,
            reason=reason,
        )
        if self._subscribers:
            now = self.clock.now()
            for message in messages:
                self.publish(DeadLetter(actor_id, now, type(message).__name__, reason))
