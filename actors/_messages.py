"""Kernel messages (commands to actors) and kernel events (what happened to them)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

if TYPE_CHECKING:
    from actors._ref import ActorRef

_T = TypeVar("_T", bound=type)

# Types whose instances travel in the control lane. A set lookup on ``type(msg)`` is the
# cheapest test the hot path can make; subclasses must be registered on their own.
_CONTROL_TYPES: set[type] = set()


def control_message(cls: _T) -> _T:
    """Class decorator: instances of ``cls`` go to the control lane, ahead of data.

    Use it for commands that must overtake ordinary work, such as a domain-level kill or
    pause. Subclasses are not registered automatically.
    """
    _CONTROL_TYPES.add(cls)
    return cls


def is_control(message: object) -> bool:
    """Whether ``message`` travels in the control lane."""
    return type(message) in _CONTROL_TYPES


@control_message
class Stop:
    """Finish the current message, then stop. Queued data messages become dead letters."""

    __slots__ = ()


@control_message
class Kill:
    """Marker put in the control lane by a kill, so a handler that never yields still sees it.

    The kill itself is a cancellation of the actor's scope; this marker makes the message
    loop reach a checkpoint, where that cancellation is delivered, before any other message.
    """

    __slots__ = ()


STOP = Stop()
KILL = Kill()


class ExitReason(enum.Enum):
    """Why an actor's incarnation ended."""

    STOPPED = "stopped"
    """It stopped normally: asked to, or it stopped itself."""
    KILLED = "killed"
    """It was cancelled at once by a kill, or because its parent died."""
    FAILED = "failed"
    """An exception escaped from one of its handlers."""


class Exit:
    """How an actor's incarnation ended: the reason and, for failures, the exception."""

    __slots__ = ("error", "reason")

    def __init__(self, reason: ExitReason, error: BaseException | None = None) -> None:
        self.reason = reason
        self.error = error

    @property
    def failed(self) -> bool:
        """True when the incarnation ended with an exception."""
        return self.reason is ExitReason.FAILED

    def __repr__(self) -> str:
        if self.error is None:
            return f"Exit({self.reason.value})"
        return f"Exit({self.reason.value}, {self.error!r})"


EXIT_STOPPED = Exit(ExitReason.STOPPED)
EXIT_KILLED = Exit(ExitReason.KILLED)


@control_message
class ChildExited:
    """Sent to a supervisor when one of its children's incarnations ended."""

    __slots__ = ("child", "exit", "incarnation")

    def __init__(self, child: ActorRef[Any], exit: Exit, incarnation: int) -> None:
        self.child = child
        self.exit = exit
        self.incarnation = incarnation


@control_message
class Reply:
    """The answer to a :meth:`ActorRef.request`, delivered to the requester's control lane.

    ``error`` is set instead of ``value`` when the handler raised.
    """

    __slots__ = ("correlation_id", "error", "value")

    def __init__(
        self, correlation_id: object, value: object = None, error: BaseException | None = None
    ) -> None:
        self.correlation_id = correlation_id
        self.value = value
        self.error = error


# ---------------------------------------------------------------------------------------
# Events published on the system's event stream.


class KernelEvent(msgspec.Struct, frozen=True, tag_field="event"):
    """Base of the kernel's events. ``time`` is the clock's monotonic reading."""

    actor_id: str
    time: float


class DeadLetter(KernelEvent, frozen=True, tag="DeadLetter"):
    """A message that could not be delivered: its receiver was dead or died before it."""

    message_type: str
    reason: str


class ActorStarted(KernelEvent, frozen=True, tag="ActorStarted"):
    """An incarnation of an actor started (``incarnation`` 0 is the first)."""

    incarnation: int


class ActorExited(KernelEvent, frozen=True, tag="ActorExited"):
    """An incarnation of an actor ended."""

    incarnation: int
    reason: str
    error: str | None = None


class ActorRestarting(KernelEvent, frozen=True, tag="ActorRestarting"):
    """A supervisor will start a new incarnation of a child after ``delay`` seconds."""

    supervisor_id: str
    attempt: int
    delay: float
    error: str | None = None


class ActorGaveUp(KernelEvent, frozen=True, tag="ActorGaveUp"):
    """A supervisor will not restart a child any more (policy exhausted or not restartable)."""

    supervisor_id: str
    attempts: int
    reason: str


AnyKernelEvent = DeadLetter | ActorStarted | ActorExited | ActorRestarting | ActorGaveUp
