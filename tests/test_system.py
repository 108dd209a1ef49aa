"""The actor system: spawning, graceful and forced shutdown, errors in the host's block."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from actors import Actor, ActorSystem, ActorSystemClosedError, ExitReason
from tests.helpers import Recorder


class Stubborn(Actor[Any]):
    """Never finishes its current message by itself."""

    async def receive(self, message: Any) -> Any:
        await anyio.sleep(3600)
        return None


async def test_shutdown_kills_what_outlives_the_deadline_and_is_idempotent() -> None:
    system = ActorSystem(shutdown_timeout=0.05)
    async with system:
        stuck = system.spawn(Stubborn)
        polite = system.spawn(lambda: Recorder([]))
        await stuck.tell("block")
        await anyio.wait_all_tasks_blocked()
        await system.shutdown()
        await system.shutdown()
        assert (await polite.join()).reason is ExitReason.STOPPED
        assert (await stuck.join()).reason is ExitReason.KILLED
        with pytest.raises(ActorSystemClosedError):
            system.spawn(Stubborn)


async def test_concurrent_shutdowns_all_return_after_the_first_finishes() -> None:
    async with ActorSystem(shutdown_timeout=0.05) as system:
        stuck = system.spawn(Stubborn)
        await stuck.tell("block")
        await anyio.wait_all_tasks_blocked()
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(system.shutdown)
        assert not stuck.is_alive


async def test_an_error_in_the_host_block_propagates_unwrapped_and_kills_actors() -> None:
    refs = []

    async def host() -> None:
        async with ActorSystem() as system:
            refs.append(system.spawn(Stubborn))
            await refs[0].tell("block")
            raise KeyError("host failed")

    with pytest.raises(KeyError):
        await host()
    assert not refs[0].is_alive


async def test_a_system_cannot_be_entered_twice() -> None:
    system = ActorSystem()
    async with system:
        pass
    with pytest.raises(ActorSystemClosedError):
        async with system:
            pass


async def test_every_actor_log_line_carries_its_actor_id() -> None:
    class Chatty(Actor[str]):
        async def receive(self, message: str) -> None:
            self.log.warning("handling", message=message)

    with capture_logs() as logs:
        async with ActorSystem() as system:
            a = system.spawn(Chatty, name="chatty")
            b = system.spawn(Chatty, name="chatty")
            await a.ask("one")
            await b.ask("two")
    handling = [entry for entry in logs if entry["event"] == "handling"]
    assert [(e["actor_id"], e["message"]) for e in handling] == [(a.id, "one"), (b.id, "two")]
    assert a.id != b.id


async def test_a_listener_that_raises_does_not_break_the_actor() -> None:
    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    async with ActorSystem() as system:
        system.subscribe(broken)
        ref = system.spawn(lambda: Recorder([]))
        assert await ref.ask("still works") == "still works"


async def test_unsubscribe_stops_delivery() -> None:
    seen: list[object] = []
    async with ActorSystem() as system:
        unsubscribe = system.subscribe(seen.append)
        unsubscribe()
        unsubscribe()
        ref = system.spawn(lambda: Recorder([]))
        await ref.ask("x")
    assert seen == []
