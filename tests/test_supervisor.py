"""Supervisors: children's exits as messages, restart policies, budgets and intensity."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from actors import (
    Actor,
    ActorGaveUp,
    ActorRef,
    ActorRestarting,
    ActorState,
    ActorSystem,
    ConstantBackoff,
    Exit,
    ExitReason,
    ExponentialBackoff,
    RestartIntensity,
    RestartIntensityExceededError,
    RestartPolicy,
    RestartType,
    Supervisor,
    VirtualClock,
)
from tests.helpers import collect


class Flaky(Actor[Any]):
    """Fails in on_start until it has been started ``succeed_on`` times (None: always)."""

    def __init__(
        self, starts: list[float], succeed_on: int | None, handled: list[Any] | None = None
    ) -> None:
        self.starts = starts
        self.succeed_on = succeed_on
        self.handled = [] if handled is None else handled

    async def on_start(self) -> None:
        self.starts.append(self.clock.now())
        if self.succeed_on is None or len(self.starts) < self.succeed_on:
            raise RuntimeError(f"attempt {len(self.starts)} failed")

    async def receive(self, message: Any) -> Any:
        self.handled.append(message)
        return ("handled", message, self.ref.incarnation)


class Watcher(Supervisor[Any]):
    """A supervisor that records what its hooks see."""

    intensity = None

    def __init__(self) -> None:
        self.exits: list[tuple[str, Exit]] = []
        self.restarts: list[tuple[str, int, float]] = []
        self.exited = anyio.Event()

    async def receive(self, message: Any) -> Any:
        factory, policy = message
        return self.spawn(factory, policy=policy, name="child")

    async def on_child_restarting(
        self, child: ActorRef[Any], exit: Exit, attempt: int, delay: float
    ) -> None:
        self.restarts.append((child.name, attempt, delay))

    async def on_child_exit(self, child: ActorRef[Any], exit: Exit) -> None:
        self.exits.append((child.name, exit))
        self.exited.set()


async def start_child(
    system: ActorSystem, factory: Any, policy: RestartPolicy
) -> tuple[Watcher, ActorRef[Any]]:
    watcher = Watcher()
    sup = system.spawn(lambda: watcher)
    child: ActorRef[Any] = await sup.ask((factory, policy))
    return watcher, child


async def test_a_child_failure_reaches_the_supervisor_as_a_message() -> None:
    starts: list[float] = []
    async with ActorSystem() as system:
        watcher, child = await start_child(
            system, lambda: Flaky(starts, None), RestartPolicy(RestartType.TEMPORARY)
        )
        await watcher.exited.wait()
        assert system.spawn(lambda: Flaky([], 1)).is_alive  # the system carries on
    [(name, exit)] = watcher.exits
    assert name == "child"
    assert exit.reason is ExitReason.FAILED
    assert str(exit.error) == "attempt 1 failed"
    assert child.state is ActorState.DEAD


async def test_constant_backoff_restarts_on_virtual_time() -> None:
    clock = VirtualClock()
    starts: list[float] = []
    policy = RestartPolicy(RestartType.TRANSIENT, ConstantBackoff(3600.0))
    async with ActorSystem(clock=clock) as system:
        watcher, child = await start_child(system, lambda: Flaky(starts, 4), policy)
        assert await child.ask("work", timeout=4 * 3600) == ("handled", "work", 3)
    assert starts == [0.0, 3600.0, 7200.0, 10800.0]
    assert watcher.restarts == [("child", 2, 3600.0), ("child", 3, 3600.0), ("child", 4, 3600.0)]


async def test_exponential_backoff_is_capped_by_max_interval() -> None:
    clock = VirtualClock()
    starts: list[float] = []
    backoff = ExponentialBackoff(interval=1.0, factor=2.0, max_interval=5.0)
    policy = RestartPolicy(RestartType.TRANSIENT, backoff)
    async with ActorSystem(clock=clock) as system:
        _, child = await start_child(system, lambda: Flaky(starts, 6), policy)
        await child.ask("ok")
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_max_attempts_counts_every_incarnation_then_gives_up() -> None:
    clock = VirtualClock()
    starts: list[float] = []
    policy = RestartPolicy(RestartType.TRANSIENT, ConstantBackoff(1.0), max_attempts=3)
    async with ActorSystem(clock=clock) as system:
        events = collect(system)
        watcher, child = await start_child(system, lambda: Flaky(starts, None), policy)
        await watcher.exited.wait()
    assert len(starts) == 3
    assert child.exit is not None
    assert child.exit.failed
    assert [e.reason for e in events if isinstance(e, ActorGaveUp)] == ["max attempts reached (3)"]
    assert [e.attempt for e in events if isinstance(e, ActorRestarting)] == [2, 3]


async def test_max_duration_bounds_the_whole_series() -> None:
    clock = VirtualClock()
    starts: list[float] = []
    policy = RestartPolicy(RestartType.TRANSIENT, ConstantBackoff(10.0), max_duration=25.0)
    async with ActorSystem(clock=clock) as system:
        watcher, _ = await start_child(system, lambda: Flaky(starts, None), policy)
        await watcher.exited.wait()
    assert starts == [0.0, 10.0, 20.0]  # a fourth start at 30 s would pass 25 s


class SelfStopper(Actor[Any]):
    def __init__(self, starts: list[int]) -> None:
        self.starts = starts

    async def on_start(self) -> None:
        self.starts.append(self.ref.incarnation)
        if len(self.starts) < 3:
            self.stop_self()

    async def receive(self, message: Any) -> Any:
        return message


@pytest.mark.parametrize(
    ("restart", "expected_starts"),
    [
        (RestartType.PERMANENT, [0, 1, 2]),
        (RestartType.TRANSIENT, [0]),
        (RestartType.TEMPORARY, [0]),
    ],
)
async def test_restart_types_on_a_normal_exit(
    restart: RestartType, expected_starts: list[int]
) -> None:
    starts: list[int] = []
    async with ActorSystem(clock=VirtualClock()) as system:
        watcher, child = await start_child(
            system, lambda: SelfStopper(starts), RestartPolicy(restart)
        )
        if restart is RestartType.PERMANENT:
            await child.ask("third incarnation is up")
        else:
            await watcher.exited.wait()
    assert starts == expected_starts


async def test_temporary_children_are_not_restarted_after_failure() -> None:
    starts: list[float] = []
    async with ActorSystem() as system:
        watcher, _ = await start_child(
            system, lambda: Flaky(starts, None), RestartPolicy(RestartType.TEMPORARY)
        )
        await watcher.exited.wait()
    assert len(starts) == 1


async def test_explicit_stop_or_kill_is_never_restarted() -> None:
    policy = RestartPolicy(RestartType.PERMANENT)
    async with ActorSystem() as system:
        watcher, child = await start_child(system, lambda: Flaky([], 1), policy)
        await child.ask("up")
        child.kill()
        await watcher.exited.wait()
        assert watcher.exits[0][1].reason is ExitReason.KILLED
        assert watcher.restarts == []


async def test_messages_sent_during_a_backoff_reach_the_next_incarnation() -> None:
    clock = VirtualClock(autojump=False)
    starts: list[float] = []
    handled: list[Any] = []
    policy = RestartPolicy(RestartType.TRANSIENT, ConstantBackoff(60.0))
    async with ActorSystem(clock=clock) as system:
        _, child = await start_child(system, lambda: Flaky(starts, 2, handled), policy)
        await anyio.wait_all_tasks_blocked()
        assert child.state is ActorState.RESTARTING
        await child.tell("kept")
        await clock.advance(60.0)
        assert await child.ask("next") == ("handled", "next", 1)
    assert starts == [0.0, 60.0]
    assert handled == ["kept", "next"]


async def test_kill_during_a_backoff_ends_the_child_for_good() -> None:
    clock = VirtualClock(autojump=False)
    starts: list[float] = []
    policy = RestartPolicy(RestartType.TRANSIENT, ConstantBackoff(60.0))
    async with ActorSystem(clock=clock) as system:
        watcher, child = await start_child(system, lambda: Flaky(starts, None), policy)
        await anyio.wait_all_tasks_blocked()
        assert child.state is ActorState.RESTARTING
        child.kill()
        await watcher.exited.wait()
        await clock.advance(120.0)
    assert starts == [0.0]
    assert watcher.exits[0][1].reason is ExitReason.KILLED


async def test_intensity_limit_stops_the_supervisor_and_escalates() -> None:
    class Strict(Supervisor[Any]):
        intensity = RestartIntensity(max_restarts=2, within=10.0)

        async def on_start(self) -> None:
            policy = RestartPolicy(RestartType.TRANSIENT, ConstantBackoff(1.0))
            self.spawn(lambda: Flaky([], None), policy=policy, name="doomed")
            self.spawn(lambda: Flaky([], 1), policy=policy, name="bystander")

    async with ActorSystem(clock=VirtualClock()) as system:
        top = Watcher()
        sup = system.spawn(lambda: top)
        strict: ActorRef[Any] = await sup.ask((Strict, RestartPolicy(RestartType.TEMPORARY)))
        await top.exited.wait()
        [(_, exit)] = top.exits
        assert isinstance(exit.error, RestartIntensityExceededError)
        assert strict.state is ActorState.DEAD


async def test_a_supervisor_stops_its_children_before_itself() -> None:
    order: list[str] = []

    class Child(Actor[Any]):
        async def on_stop(self) -> None:
            order.append(f"child {self.ref.name}")

    class Parent(Supervisor[Any]):
        async def on_start(self) -> None:
            self.spawn(Child, name="a")
            self.spawn(Child, name="b")

        async def on_stop(self) -> None:
            order.append("parent")

    async with ActorSystem() as system:
        parent = system.spawn(Parent)
        await anyio.wait_all_tasks_blocked()
        parent.stop()
        await parent.join()
    assert sorted(order[:2]) == ["child a", "child b"]
    assert order[2] == "parent"


async def test_killing_a_supervisor_kills_its_children() -> None:
    children: list[ActorRef[Any]] = []

    class Sleeper(Actor[Any]):
        async def on_start(self) -> None:
            await anyio.sleep(3600)

    class Parent(Supervisor[Any]):
        async def on_start(self) -> None:
            children.append(self.spawn(Sleeper))

    async with ActorSystem() as system:
        parent = system.spawn(Parent)
        await anyio.wait_all_tasks_blocked()
        parent.kill()
        await parent.join()
        exit = await children[0].join()
    assert exit.reason is ExitReason.KILLED


async def test_send_after_delivers_on_the_clock_and_can_be_cancelled() -> None:
    clock = VirtualClock()
    received: list[tuple[str, float]] = []

    class Timed(Supervisor[str]):
        async def on_start(self) -> None:
            self.send_after(30.0, "late")
            self.send_after(10.0, "early")
            self.send_after(20.0, "cancelled").cancel()

        async def receive(self, message: str) -> None:
            received.append((message, self.clock.now()))

    async with ActorSystem(clock=clock) as system:
        system.spawn(Timed)
        await clock.sleep(60.0)
    assert received == [("early", 10.0), ("late", 30.0)]


async def test_start_task_runs_in_the_supervisor_and_dies_with_it() -> None:
    stopped = anyio.Event()
    started = anyio.Event()

    class Host(Supervisor[Any]):
        async def on_start(self) -> None:
            self.start_task(self.forever)

        async def forever(self) -> None:
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                stopped.set()

    async with ActorSystem() as system:
        host = system.spawn(Host)
        await started.wait()
        host.stop()
        await host.join()
        assert stopped.is_set()
