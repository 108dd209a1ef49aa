"""The kernel's exception tree.

```
ActorError
├── MailboxFullError        tell_nowait on a full data lane
├── StashOverflowError      a message sent to a paused actor whose stash is full
├── ActorDeadError          ask (or spawn on) an actor that is no longer alive
├── AskTimeoutError         no reply within the ask's timeout (also a TimeoutError)
├── ActorSystemClosedError  spawning into a system that is shutting down
└── EscalatedError          base of failures a supervisor passes up to its own parent
    └── RestartIntensityExceededError
```
"""

from __future__ import annotations


class ActorError(Exception):
    """Base class of every error raised by the actor kernel."""


class MailboxFullError(ActorError):
    """Raised by ``tell_nowait`` when the actor's bounded data lane is full.

    It exists so that a sender that must not wait can tell "the receiver is slow"
    apart from every other failure and apply its own policy (drop, retry, shed load).
    """

    def __init__(self, actor_id: str, capacity: int) -> None:
        super().__init__(f"mailbox of {actor_id} is full ({capacity} data messages queued)")
        self.actor_id = actor_id
        self.capacity = capacity


class StashOverflowError(ActorError):
    """Raised when a data message reaches a paused actor whose stash is already full.

    A paused actor holds data messages until it is resumed; the stash is bounded so a
    paused actor cannot grow without limit. The message is not taken: the sender keeps it.
    """

    def __init__(self, actor_id: str, capacity: int) -> None:
        super().__init__(f"stash of paused actor {actor_id} is full ({capacity} messages)")
        self.actor_id = actor_id
        self.capacity = capacity


class ActorDeadError(ActorError):
    """Raised to an asker when the actor died before it replied, or was already dead."""

    def __init__(self, actor_id: str, reason: str = "actor is dead") -> None:
        super().__init__(f"{actor_id}: {reason}")
        self.actor_id = actor_id
        self.reason = reason


class AskTimeoutError(ActorError, TimeoutError):
    """Raised when an ask got no reply within its timeout.

    A reply that arrives later is dropped (and reported as a dead letter); it is never
    delivered to a later ask.
    """

    def __init__(self, actor_id: str, timeout: float) -> None:
        super().__init__(f"no reply from {actor_id} within {timeout:g} s")
        self.actor_id = actor_id
        self.timeout = timeout


class ActorSystemClosedError(ActorError):
    """Raised when spawning into an actor system that is shutting down or closed."""


class EscalatedError(ActorError):
    """A failure a supervisor could not handle and passes up to its own supervisor."""


class RestartIntensityExceededError(EscalatedError):
    """Raised inside a supervisor that restarted children more often than its intensity allows.

    Erlang/OTP's rule: more than ``max_restarts`` restarts within ``within`` seconds means
    restarting does not help, so the supervisor stops its children and fails itself.
    """

    def __init__(self, supervisor_id: str, max_restarts: int, within: float) -> None:
        super().__init__(
            f"{supervisor_id} restarted children more than {max_restarts} times "
            f"within {within:g} s; giving up"
        )
        self.supervisor_id = supervisor_id
        self.max_restarts = max_restarts
        self.within = within
