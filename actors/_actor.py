"""The Actor base class: what a user subclasses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

from anyio.abc import TaskStatus

from actors._messages import STOP, ChildExited

if TYPE_CHECKING:
    import structlog

    from actors._clock import Clock
    from actors._ref import ActorRef
    from actors._system import ActorSystem

M = TypeVar("M")


class Actor(Generic[M]):
    """An object that handles one message at a time from its mailbox.

    Subclass it and override :meth:`receive` (and, if needed, :meth:`on_start` and
    :meth:`on_stop`). The kernel creates a fresh instance for every incarnation, from the
    factory given to ``spawn``, and sets :attr:`ref` before :meth:`on_start` runs.

    If a handler raises, the incarnation ends as failed: the exception goes to the asker
    of the message being handled, if any, and the supervisor decides what happens next.
    """

    # Slots keep an idle actor small; subclasses without __slots__ still get a __dict__.
    __slots__ = ("ref",)

    ref: ActorRef[M]

    async def on_start(self) -> None:
        """Called when the incarnation starts, before any message."""

    async def receive(self, message: M) -> object:
        """Handle one message; the value returned answers an ask or request."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message)!r}")

    async def on_stop(self) -> None:
        """Called when the incarnation ends by a stop or a failure (not by a kill)."""

    # -- conveniences -------------------------------------------------------------------

    @property
    def system(self) -> ActorSystem:
        """The actor system this actor lives in."""
        return self.ref._system

    @property
    def clock(self) -> Clock:
        """The system's clock: use it for every wait so tests can run on virtual time."""
        return self.ref._system.clock

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A logger bound to this actor's id."""
        return self.ref.log

    def stop_self(self) -> None:
        """Stop after the current message. A permanent child will be restarted."""
        self.ref._mailbox.put_control(STOP)

    # -- kernel hooks -------------------------------------------------------------------

    async def _serve(self, ref: ActorRef[M], task_status: TaskStatus[None]) -> None:
        task_status.started()
        await self.on_start()
        await ref._message_loop(self)

    async def _child_exited(self, notice: ChildExited) -> None:
        """Only supervisors have children."""
