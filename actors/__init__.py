"""A small actor kernel on anyio: mailboxes with a control lane, supervisors, virtual time.

Everything public is importable from ``actors``; the ``actors._*`` modules are private.
This package knows nothing about workflows: ``runtime`` builds the workflow engine on it,
the way trio's ``_core`` kernel underlies its public API.
"""

from actors._actor import Actor
from actors._clock import Clock, RealClock, VirtualClock
from actors._errors import (
    ActorDeadError,
    ActorError,
    ActorSystemClosedError,
    AskTimeoutError,
    EscalatedError,
    MailboxFullError,
    RestartIntensityExceededError,
    StashOverflowError,
)
from actors._messages import (
    ActorExited,
    ActorGaveUp,
    ActorRestarting,
    ActorStarted,
    AnyKernelEvent,
    ChildExited,
    DeadLetter,
    Exit,
    ExitReason,
    KernelEvent,
    Reply,
    control_message,
    is_control,
)
from actors._policy import (
    Backoff,
    ConstantBackoff,
    ExponentialBackoff,
    RandomBackoff,
    RestartIntensity,
    RestartPolicy,
    RestartType,
)
from actors._ref import ActorRef, ActorState
from actors._supervisor import Supervisor
from actors._system import ActorSystem

__all__ = (
    "Actor",
    "ActorDeadError",
    "ActorError",
    "ActorExited",
    "ActorGaveUp",
    "ActorRef",
    "ActorRestarting",
    "ActorStarted",
    "ActorState",
    "ActorSystem",
    "ActorSystemClosedError",
    "AnyKernelEvent",
    "AskTimeoutError",
    "Backoff",
    "ChildExited",
    "Clock",
    "ConstantBackoff",
    "DeadLetter",
    "EscalatedError",
    "Exit",
    "ExitReason",
    "ExponentialBackoff",
    "KernelEvent",
    "MailboxFullError",
    "RandomBackoff",
    "RealClock",
    "Reply",
    "RestartIntensity",
    "RestartIntensityExceededError",
    "RestartPolicy",
    "RestartType",
    "StashOverflowError",
    "Supervisor",
    "VirtualClock",
    "control_message",
    "is_control",
)
