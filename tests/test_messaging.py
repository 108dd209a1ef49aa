"""tell, tell_nowait, ask and request: lanes, backpressure and reply slots."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from actors import (
    Actor,
    ActorDeadError,
    ActorSystem,
    AskTimeoutError,
    DeadLetter,
    ExitReason,
    MailboxFullError,
    Reply,
    VirtualClock,
    is_control,
)
from tests.helpers import Gate, Recorder, Urgent, collect


async def test_tell_delivers_in_order() -> None:
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(seen))
        for i in range(100):
            await ref.tell(i)
        assert await ref.ask("last") == "last"
    assert seen == [*range(100), "last"]


async def test_kill_behind_ten_thousand_data_messages_wins() -> None:
    seen: list[Any] = []
    async with ActorSystem(mailbox_capacity=20_000) as system:
        events = collect(system)
        ref = system.spawn(lambda: Recorder(seen))
        for i in range(10_000):
            ref.tell_nowait(i)
        ref.kill()
        exit = await ref.join()
    assert exit.reason is ExitReason.KILLED
    assert seen == []
    dead = [e for e in events if isinstance(e, DeadLetter)]
    assert len(dead) == 10_000


async def test_kill_cancels_a_running_handler_and_skips_the_backlog() -> None:
    gate = anyio.Event()
    seen: list[Any] = []
    async with ActorSystem(mailbox_capacity=20_000) as system:
        ref = system.spawn(lambda: Gate(gate, seen))
        await ref.tell("first")
        await anyio.wait_all_tasks_blocked()
        for i in range(10_000):
            ref.tell_nowait(i)
        ref.kill()
        await ref.join()
        gate.set()
    assert seen == [("start", "first")]


async def test_user_control_message_overtakes_queued_data() -> None:
    seen: list[Any] = []
    async with ActorSystem(mailbox_capacity=20_000) as system:
        ref = system.spawn(lambda: Recorder(seen))
        for i in range(10_000):
            ref.tell_nowait(i)
        await ref.tell(Urgent("now"))
        await ref.ask("end")
    assert is_control(Urgent("x"))
    assert seen[0] == "now"
    assert seen[1:] == [*range(10_000), "end"]


async def test_tell_waits_when_the_data_lane_is_full() -> None:
    gate = anyio.Event()
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Gate(gate, seen), mailbox_capacity=2)
        await ref.tell("busy")  # taken by the handler, which then blocks on the gate
        await anyio.wait_all_tasks_blocked()
        await ref.tell(1)
        await ref.tell(2)
        with pytest.raises(MailboxFullError):
            ref.tell_nowait(3)
        sent = anyio.Event()

        async def third() -> None:
            await ref.tell(3)
            sent.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(third)
            await anyio.wait_all_tasks_blocked()
            assert not sent.is_set()  # backpressure: the sender waits
            gate.set()
        assert sent.is_set()
        await ref.ask("end")
    assert [m for kind, m in seen if kind == "done"] == ["busy", 1, 2, 3, "end"]


async def test_a_cancelled_waiting_sender_passes_the_room_on() -> None:
    gate = anyio.Event()
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Gate(gate, seen), mailbox_capacity=1)
        await ref.tell("busy")
        await anyio.wait_all_tasks_blocked()
        await ref.tell("queued")
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as doomed:
                tg.start_soon(ref.tell, "never")  # waits for room
                await anyio.wait_all_tasks_blocked()
            doomed.cancel()
            tg.start_soon(ref.tell, "second")
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()  # drop the first waiter; "second" must still get in
        async with anyio.create_task_group() as tg:
            tg.start_soon(ref.tell, "third")
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert await ref.ask("end") == "end"
    done = [m for kind, m in seen if kind == "done"]
    assert done[:2] == ["busy", "queued"]
    assert done[-1] == "end"
    assert "third" in done


async def test_ask_returns_the_handlers_value() -> None:
    class Double(Actor[int]):
        async def receive(self, message: int) -> int:
            return message * 2

    async with ActorSystem() as system:
        ref = system.spawn(Double)
        assert [await ref.ask(i, timeout=1) for i in range(5)] == [0, 2, 4, 6, 8]


async def test_late_reply_is_dropped_never_given_to_a_later_ask() -> None:
    class Slow(Actor[tuple[str, float]]):
        async def receive(self, message: tuple[str, float]) -> str:
            tag, delay = message
            await self.clock.sleep(delay)
            return tag

    clock = VirtualClock()
    async with ActorSystem(clock=clock) as system:
        events = collect(system)
        ref = system.spawn(Slow)
        with pytest.raises(AskTimeoutError) as caught:
            await ref.ask(("first", 10.0), timeout=1.0)
        assert isinstance(caught.value, TimeoutError)
        assert clock.now() == pytest.approx(1.0)
        # The first handler is still running; its reply must not reach this ask.
        assert await ref.ask(("second", 0.0), timeout=60.0) == "second"
    late = [e for e in events if isinstance(e, DeadLetter)]
    assert [e.reason for e in late] == ["late reply: the asker gave up"]


async def test_ask_raises_what_the_handler_raised_and_the_actor_fails() -> None:
    class Picky(Actor[int]):
        async def receive(self, message: int) -> int:
            if message < 0:
                raise ValueError(f"negative: {message}")
            return message

    async with ActorSystem() as system:
        ref = system.spawn(Picky)
        assert await ref.ask(1) == 1
        with pytest.raises(ValueError, match="negative: -1"):
            await ref.ask(-1)
        exit = await ref.join()
    assert exit.reason is ExitReason.FAILED
    assert isinstance(exit.error, ValueError)


async def test_pending_asks_of_a_dying_actor_fail_with_actor_dead() -> None:
    gate = anyio.Event()
    results: list[object] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Gate(gate, []))

        async def ask(tag: str) -> None:
            try:
                results.append(await ref.ask(tag))
            except ActorDeadError as exc:
                results.append(type(exc))

        async with anyio.create_task_group() as tg:
            for tag in ("current", "queued-1", "queued-2"):
                tg.start_soon(ask, tag)
            await anyio.wait_all_tasks_blocked()
            ref.kill()
        with pytest.raises(ActorDeadError):
            await ref.ask("after death")
    assert results == [ActorDeadError] * 3


async def test_tell_to_a_dead_actor_is_a_dead_letter_event() -> None:
    async with ActorSystem() as system:
        events = collect(system)
        ref = system.spawn(lambda: Recorder([]))
        ref.stop()
        await ref.join()
        await ref.tell("hello")
        ref.tell_nowait("again")
        assert system.dead_letters == 2
    dead = [e for e in events if isinstance(e, DeadLetter)]
    assert [(e.actor_id, e.message_type, e.reason) for e in dead] == [
        (ref.id, "str", "actor is dead"),
        (ref.id, "str", "actor is dead"),
    ]


async def test_request_delivers_the_answer_to_the_requesters_control_lane() -> None:
    class Upper(Actor[str]):
        async def receive(self, message: str) -> str:
            return message.upper()

    replies: list[tuple[object, object]] = []
    answered = anyio.Event()

    class Requester(Actor[object]):
        async def receive(self, message: object) -> object:
            if isinstance(message, Reply):
                replies.append((message.correlation_id, message.value))
                answered.set()
            elif isinstance(message, str):
                target = self.system.spawn(Upper)
                await target.request(message, self.ref, correlation_id=42)
            return None

    async with ActorSystem() as system:
        ref = system.spawn(Requester)
        await ref.tell("hi")
        with anyio.fail_after(5):
            await answered.wait()
    assert replies == [(42, "HI")]
