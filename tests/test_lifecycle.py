"""Stop, kill, pause and resume, and what happens to messages around them."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from actors import Actor, ActorState, ActorSystem, ExitReason, StashOverflowError
from tests.helpers import Gate, Recorder, Urgent


class Tracked(Actor[Any]):
    """Records its lifecycle hooks."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def on_start(self) -> None:
        self.calls.append("start")

    async def receive(self, message: Any) -> Any:
        self.calls.append(f"receive {message}")
        if message == "sleep":
            await anyio.sleep(3600)
        return message

    async def on_stop(self) -> None:
        self.calls.append("stop")


async def test_stop_finishes_the_current_message_then_stops() -> None:
    gate = anyio.Event()
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Gate(gate, seen))
        await ref.tell("current")
        await anyio.wait_all_tasks_blocked()
        await ref.tell("queued")
        ref.stop()
        await anyio.wait_all_tasks_blocked()
        assert ref.is_alive  # still finishing "current"
        gate.set()
        exit = await ref.join()
        assert system.dead_letters == 1  # "queued"
    assert exit.reason is ExitReason.STOPPED
    assert seen == [("start", "current"), ("done", "current")]


async def test_kill_does_not_run_on_stop_but_stop_does() -> None:
    killed: list[str] = []
    stopped: list[str] = []
    async with ActorSystem() as system:
        victim = system.spawn(lambda: Tracked(killed))
        await victim.tell("sleep")
        await anyio.wait_all_tasks_blocked()
        victim.kill()
        assert (await victim.join()).reason is ExitReason.KILLED

        polite = system.spawn(lambda: Tracked(stopped))
        await polite.ask("hi")
        polite.stop()
        assert (await polite.join()).reason is ExitReason.STOPPED
    assert killed == ["start", "receive sleep"]
    assert stopped == ["start", "receive hi", "stop"]


async def test_stop_and_kill_are_idempotent() -> None:
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder([]))
        ref.stop()
        ref.stop()
        ref.kill()
        await ref.join()
        ref.kill()
        ref.stop()
        assert ref.state is ActorState.DEAD


async def test_a_failure_in_on_start_ends_the_actor_as_failed() -> None:
    class Broken(Actor[Any]):
        async def on_start(self) -> None:
            raise RuntimeError("cannot start")

    async with ActorSystem() as system:
        ref = system.spawn(Broken)
        exit = await ref.join()
    assert exit.reason is ExitReason.FAILED
    assert str(exit.error) == "cannot start"


async def test_pause_stashes_data_while_control_flows_and_resume_replays_in_order() -> None:
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(seen))
        await ref.ask("before")
        ref.pause()
        for i in range(5):
            await ref.tell(i)
        await ref.tell(Urgent("control while paused"))
        assert await ref.ask(Urgent("asked while paused")) is not None
        assert seen == ["before", "control while paused", "asked while paused"]
        ref.resume()
        await ref.ask("after")
    assert seen[3:] == [0, 1, 2, 3, 4, "after"]


async def test_messages_queued_before_a_pause_come_before_stashed_ones() -> None:
    gate = anyio.Event()
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Gate(gate, seen))
        await ref.tell("busy")
        await anyio.wait_all_tasks_blocked()
        await ref.tell("queued-1")
        await ref.tell("queued-2")
        ref.pause()
        gate.set()
        await anyio.wait_all_tasks_blocked()
        await ref.tell("stashed-1")
        await ref.tell("stashed-2")
        ref.resume()
        await ref.ask("end")
    assert [m for kind, m in seen if kind == "done"] == [
        "busy",
        "queued-1",
        "queued-2",
        "stashed-1",
        "stashed-2",
        "end",
    ]


async def test_stash_is_bounded_and_overflow_is_a_typed_error_for_the_sender() -> None:
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(seen), stash_capacity=3)
        ref.pause()
        for i in range(3):
            await ref.tell(i)
        with pytest.raises(StashOverflowError) as caught:
            await ref.tell(3)
        assert caught.value.capacity == 3
        with pytest.raises(StashOverflowError):
            ref.tell_nowait(3)
        ref.resume()
        await ref.ask("end")
    assert seen == [0, 1, 2, "end"]


async def test_stop_of_a_paused_actor_turns_the_stash_into_dead_letters() -> None:
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder([]))
        ref.pause()
        for i in range(4):
            await ref.tell(i)
        ref.stop()
        await ref.join()
        assert system.dead_letters == 4


async def test_drain_stop_handles_everything_sent_before_it() -> None:
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(seen), mailbox_capacity=2)
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        ref.stop(drain=True)  # may exceed the capacity by one: it never waits
        assert (await ref.join()).reason is ExitReason.STOPPED
        assert system.dead_letters == 0
    assert seen == [1, 2]


async def test_drain_stop_of_a_paused_actor_waits_behind_the_stash() -> None:
    seen: list[Any] = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(seen))
        ref.pause()
        await ref.tell("stashed")
        ref.stop(drain=True)
        await ref.tell("after the stop")
        ref.resume()
        await ref.join()
        assert system.dead_letters == 1
    assert seen == ["stashed"]
