"""ActorRef: the handle to an actor, and the machinery that runs its incarnations."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel
import structlog
from anyio.abc import TaskStatus

from actors._errors import ActorDeadError, AskTimeoutError, MailboxFullError
from actors._mailbox import Mailbox
from actors._messages import (
    _CONTROL_TYPES,
    EXIT_KILLED,
    EXIT_STOPPED,
    KILL,
    STOP,
    ActorExited,
    ActorStarted,
    ChildExited,
    Exit,
    ExitReason,
    Kill,
    Reply,
    Stop,
)
from actors._policy import RestartPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from actors._actor import Actor
    from actors._system import ActorSystem

M = TypeVar("M")

# Kernel messages that carry no user data: not dead letters when undeliverable.
_KERNEL_BOOKKEEPING = frozenset({Stop, Kill, ChildExited})

# How many messages an actor handles in a row before it lets other tasks run.
_FAIRNESS_BUDGET = 128


class ActorState(enum.Enum):
    """Where an actor is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    """Its last incarnation ended; its supervisor is deciding or waiting out a backoff."""
    DEAD = "dead"


class _ReplyTo:
    """Where the answer to a request goes."""

    __slots__ = ()

    def deliver(self, value: object, error: BaseException | None) -> bool:
        """Hand over the answer; False if nobody will ever read it."""
        raise NotImplementedError


class _AskSlot(_ReplyTo):
    """The single reply slot of one ask."""

    __slots__ = ("abandoned", "error", "event", "filled", "value")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self.filled = False
        self.abandoned = False

    def deliver(self, value: object, error: BaseException | None) -> bool:
        if self.abandoned or self.filled:
            return False
        self.filled = True
        self.value = value
        self.error = error
        self.event.set()
        return True


class _ReplyToActor(_ReplyTo):
    """A request's answer, delivered as a :class:`Reply` to the requester's control lane."""

    __slots__ = ("correlation_id", "requester")

    def __init__(self, requester: ActorRef[Any], correlation_id: object) -> None:
        self.requester = requester
        self.correlation_id = correlation_id

    def deliver(self, value: object, error: BaseException | None) -> bool:
        if self.requester._state is ActorState.DEAD:
            return False
        self.requester._mailbox.put_control(Reply(self.correlation_id, value, error))
        return True


class _Ask:
    """Envelope of a message that expects an answer."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: object, reply_to: _ReplyTo) -> None:
        self.message = message
        self.reply_to = reply_to


class ActorRef(Generic[M]):
    """The handle to an actor: send it messages, ask it questions, stop, kill, pause it.

    A ref stays valid across restarts: a supervisor restarts the actor behind it and the
    mailbox (with its queued messages) carries over. Every method must be called from the
    event loop thread.
    """

    __slots__ = (
        "__weakref__",
        "_actor",
        "_current",
        "_done",
        "_factory",
        "_final_exit",
        "_first_start",
        "_halted",
        "_incarnation",
        "_kill_requested",
        "_log",
        "_mailbox",
        "_parent",
        "_policy",
        "_scope",
        "_state",
        "_system",
        "id",
        "name",
    )

    def __init__(
        self,
        system: ActorSystem,
        parent: ActorRef[Any] | None,
        factory: Callable[[], Actor[M]],
        name: str,
        actor_id: str,
        policy: RestartPolicy,
        mailbox_capacity: int,
        stash_capacity: int,
    ) -> None:
        self.id = actor_id
        self.name = name
        self._system = system
        self._parent = parent
        self._factory = factory
        self._policy = policy
        self._mailbox = Mailbox(actor_id, mailbox_capacity, stash_capacity)
        self._state = ActorState.STARTING
        self._incarnation = 0
        self._first_start = system.clock.now()
        self._actor: Actor[M] | None = None
        self._scope: anyio.CancelScope | None = None
        self._current: _ReplyTo | None = None
        self._done: anyio.Event | None = None
        self._final_exit: Exit | None = None
        self._halted = False
        self._kill_requested = False
        self._log: structlog.typing.FilteringBoundLogger | None = None

    def __repr__(self) -> str:
        return f"<ActorRef {self.id} {self._state.value}>"

    # -- introspection ------------------------------------------------------------------

    @property
    def state(self) -> ActorState:
        """The actor's current state."""
        return self._state

    @property
    def is_alive(self) -> bool:
        """False once the actor is dead for good (it will not be restarted)."""
        return self._state is not ActorState.DEAD

    @property
    def incarnation(self) -> int:
        """How many times the actor was restarted (0 for the first incarnation)."""
        return self._incarnation

    @property
    def exit(self) -> Exit | None:
        """How the actor ended for good, or None while it is alive."""
        return self._final_exit

    @property
    def parent(self) -> ActorRef[Any] | None:
        """The supervising actor's ref (None only for the system's root)."""
        return self._parent

    @property
    def backlog(self) -> int:
        """Messages waiting in the mailbox (control, data and stash)."""
        return len(self._mailbox)

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger bound to this actor's id."""
        if self._log is None:
            self._log = structlog.get_logger("actors").bind(actor_id=self.id)
        return self._log

    # -- sending ------------------------------------------------------------------------

    async def tell(self, message: M) -> None:
        """Send without waiting for an answer.

        Waits while the data lane is full (backpressure); control messages never wait.
        A message to a dead actor becomes a dead letter. Does not yield when there is room.

        :raises StashOverflowError: if the actor is paused and its stash is full.
        """
        await self._put(message, message)

    def tell_nowait(self, message: M) -> None:
        """Send without waiting for room.

        :raises MailboxFullError: if the data lane is full.
        :raises StashOverflowError: if the actor is paused and its stash is full.
        """
        if self._state is ActorState.DEAD:
            self._undeliverable(message, "actor is dead")
            return
        if type(message) in _CONTROL_TYPES:
            self._mailbox.put_control(message)
            return
        if not self._mailbox.try_put_data(message):
            raise MailboxFullError(self.id, self._mailbox.capacity)

    # The timeout runs on the system's clock (virtual in tests), which anyio.fail_after cannot.
    async def ask(self, message: M, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send ``message`` and wait for the value the actor's handler returns.

        The reply slot belongs to this call only: a reply that arrives after the timeout
        is dropped (reported as a dead letter), never handed to another ask.

        :raises AskTimeoutError: if no reply came within ``timeout`` seconds (on the
            system's clock), including time spent waiting for room in the mailbox.
        :raises ActorDeadError: if the actor is dead or dies before answering.
        :raises StashOverflowError: if the actor is paused and its stash is full.
        :raises Exception: whatever the handler raised for this message.
        """
        if self._state is ActorState.DEAD:
            self._undeliverable(message, "actor is dead")
            raise ActorDeadError(self.id)
        slot = _AskSlot()
        envelope = _Ask(message, slot)
        try:
            if timeout is None:
                await self._put(envelope, message)
                await slot.event.wait()
            else:
                with self._system.clock.fail_after(timeout):
                    await self._put(envelope, message)
                    await slot.event.wait()
        except TimeoutError:
            slot.abandoned = True
            raise AskTimeoutError(self.id, timeout or 0.0) from None
        except BaseException:
            slot.abandoned = True
            raise
        if slot.error is not None:
            raise slot.error
        return slot.value

    async def request(self, message: M, reply_to: ActorRef[Any], correlation_id: object) -> None:
        """Send ``message``; the handler's result reaches ``reply_to`` as a :class:`Reply`.

        Unlike :meth:`ask`, the requester does not wait: the reply arrives in its control
        lane, tagged with ``correlation_id``.
        """
        await self._put(_Ask(message, _ReplyToActor(reply_to, correlation_id)), message)

    async def _put(self, item: object, message: object) -> None:
        if type(message) in _CONTROL_TYPES:
            if self._state is ActorState.DEAD:
                self._undeliverable(item, "actor is dead")
            else:
                self._mailbox.put_control(item)
            return
        mailbox = self._mailbox
        while True:
            if self._state is ActorState.DEAD:
                self._undeliverable(item, "actor is dead")
                return
            if mailbox.try_put_data(item):
                return
            await mailbox.wait_for_room()

    # -- lifecycle commands -------------------------------------------------------------

    def stop(self, *, drain: bool = False) -> None:
        """Stop the actor for good. Idempotent.

        By default the stop is a control message: the actor finishes its current message
        and stops; data messages still queued become dead letters and pending asks fail
        with :class:`ActorDeadError`. With ``drain=True`` the stop queues behind the data
        already sent (Akka's poison pill): everything sent before it is handled first.
        It never waits: it may take the data lane one message over its capacity.
        """
        if self._state is ActorState.DEAD:
            return
        self._halted = True
        if self._state is ActorState.RESTARTING and not drain:
            self._die(EXIT_STOPPED)
            self._notify_parent(EXIT_STOPPED, self._incarnation)
            return
        mailbox = self._mailbox
        if not drain:
            mailbox.put_control(STOP)
        elif mailbox.paused:
            mailbox.stash.append(STOP)
        else:
            mailbox.data.append(STOP)
            mailbox.wake_receiver()

    def kill(self) -> None:
        """Cancel the actor at once, whatever it is doing; it is not restarted. Idempotent.

        Queued messages are not handled: they become dead letters, and pending asks fail
        with :class:`ActorDeadError`. ``on_stop`` is not called.
        """
        if self._state is ActorState.DEAD:
            return
        self._halted = True
        self._kill_requested = True
        if self._state is ActorState.RESTARTING:
            self._die(EXIT_KILLED)
            self._notify_parent(EXIT_KILLED, self._incarnation)
        else:
            if self._scope is not None:
                self._scope.cancel()
            self._mailbox.put_control(KILL)

    def pause(self) -> None:
        """Hold data messages from now on; control messages still flow. Idempotent.

        Takes effect at once: the message being handled finishes, no data message is
        handled after it, and data messages sent from now on go to the bounded stash.
        """
        self._mailbox.pause()

    def resume(self) -> None:
        """Deliver what was held, in the order it arrived, and go on as before. Idempotent."""
        self._mailbox.resume()

    async def join(self) -> Exit:
        """Wait until the actor is dead for good; return how it ended."""
        if self._final_exit is None:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        assert self._final_exit is not None
        return self._final_exit

    # -- running ------------------------------------------------------------------------

    async def _run_incarnation(
        self, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run one incarnation of the actor, from its factory to its exit."""
        if self._state is ActorState.DEAD:
            task_status.started()
            return
        exit = EXIT_STOPPED
        incarnation = self._incarnation
        scope = anyio.CancelScope()
        self._scope = scope
        if self._kill_requested:
            scope.cancel()
        system = self._system
        try:
            with scope:
                self._state = ActorState.RUNNING
                actor = None
                try:
                    actor = self._factory()
                    actor.ref = self
                    self._actor = actor
                    if system._subscribers:
                        system.publish(ActorStarted(self.id, system.clock.now(), incarnation))
                    await actor._serve(self, task_status)
                except Exception as exc:
                    exit = Exit(ExitReason.FAILED, exc)
                if actor is not None:
                    try:
                        await actor.on_stop()
                    except Exception as exc:
                        if not exit.failed:
                            exit = Exit(ExitReason.FAILED, exc)
            if scope.cancelled_caught:
                exit = EXIT_KILLED
        except BaseException:
            # Cancelled from outside (the parent died) or interrupted: dead for good.
            self._scope = None
            self._halted = True
            self._end_incarnation(EXIT_KILLED, incarnation)
            raise
        self._scope = None
        self._end_incarnation(exit, incarnation)

    def _end_incarnation(self, exit: Exit, incarnation: int) -> None:
        current, self._current = self._current, None
        if current is not None:
            error = exit.error if exit.failed else None
            current.deliver(None, error or ActorDeadError(self.id, f"actor {exit.reason.value}"))
        system = self._system
        if system._subscribers:
            system.publish(
                ActorExited(
                    self.id,
                    system.clock.now(),
                    incarnation,
                    exit.reason.value,
                    repr(exit.error) if exit.error is not None else None,
                )
            )
        if exit.failed:
            self.log.debug("actor failed", incarnation=incarnation, error=repr(exit.error))
        if not self._halted and self._parent is not None and self._policy.wants_restart(exit):
            self._state = ActorState.RESTARTING  # the supervisor decides
        else:
            self._die(exit)
        self._notify_parent(exit, incarnation)

    def _notify_parent(self, exit: Exit, incarnation: int) -> None:
        parent = self._parent
        if parent is not None and parent._state is ActorState.RUNNING:
            parent._mailbox.put_control(ChildExited(self, exit, incarnation))

    def _die(self, exit: Exit) -> None:
        """Dead for good: fail pending asks, turn queued messages into dead letters."""
        self._state = ActorState.DEAD
        self._final_exit = exit
        self._actor = None
        reason = f"actor {exit.reason.value}"
        items = self._mailbox.drain()
        if items:
            self._undeliverable_all(items, reason)
        self._mailbox.wake_all_senders()
        if self._done is not None:
            self._done.set()

    def _undeliverable(self, item: object, reason: str) -> None:
        self._undeliverable_all((item,), reason)

    def _undeliverable_all(self, items: Iterable[object], reason: str) -> None:
        letters: list[object] = []
        for item in items:
            if type(item) is _Ask:
                item.reply_to.deliver(None, ActorDeadError(self.id, reason))
                letters.append(item.message)
            elif type(item) not in _KERNEL_BOOKKEEPING:
                letters.append(item)
        if letters:
            self._system._dead_letters(self.id, letters, reason)

    async def _message_loop(self, actor: Actor[M]) -> None:
        """Serve the mailbox until a stop; control lane first, data lane unless paused."""
        mailbox = self._mailbox
        control = mailbox.control
        data = mailbox.data
        receive = actor.receive
        budget = _FAIRNESS_BUDGET
        while True:
            if control:
                message = control.popleft()
                kind = type(message)
                if kind is Stop:
                    return
                if kind is Kill:
                    await anyio.lowlevel.checkpoint()  # delivers the kill's cancellation
                    continue
                if kind is ChildExited:
                    await actor._child_exited(message)  # type: ignore[arg-type]
                elif kind is _Ask:
                    await self._answer(receive, message)  # type: ignore[arg-type]
                else:
                    await receive(message)  # type: ignore[arg-type]
            elif data and not mailbox.paused:
                message = data.popleft()
                mailbox.took_data()
                kind = type(message)
                if kind is _Ask:
                    await self._answer(receive, message)  # type: ignore[arg-type]
                elif kind is Stop:
                    return
                else:
                    await receive(message)  # type: ignore[arg-type]
            else:
                budget = _FAIRNESS_BUDGET
                await mailbox.wait_for_message()
                continue
            budget -= 1
            if budget == 0:
                budget = _FAIRNESS_BUDGET
                await anyio.lowlevel.checkpoint()

    async def _answer(self, receive: Callable[[Any], Any], envelope: _Ask) -> None:
        self._current = envelope.reply_to
        value = await receive(envelope.message)
        self._current = None
        if not envelope.reply_to.deliver(value, None):
            self._system._dead_letters(self.id, (value,), "late reply: the asker gave up")
