"""The ``actors`` workload: the kernel's costs, beside a bare anyio floor run in the same process.

The floor is the cheapest honest version of the same lifecycle: an anyio task with a
deque-and-Event mailbox that takes one message, emits three events and stops. Tiercel's
actors do more (two lanes, backpressure, cancel scopes, supervision, dead letters), so the
ratio to the floor is what tells whether that costs too much.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import anyio
import msgspec

from actors import Actor, ActorRef, ActorSystem
from benchmarks._report import Figure, median, percentile

REPEATS = 5


class Emitted(msgspec.Struct, frozen=True):
    """Stands for an event an actor emits (a task run's created/started/ended)."""

    actor: int
    seq: int


_STOP = object()


class _BareMailbox:
    __slots__ = ("event", "queue")

    def __init__(self) -> None:
        self.queue: deque[object] = deque()
        self.event: anyio.Event | None = None

    def put(self, message: object) -> None:
        self.queue.append(message)
        if self.event is not None:
            self.event.set()
            self.event = None


async def _bare_actor(mailbox: _BareMailbox, sink: list[Emitted]) -> None:
    queue = mailbox.queue
    while True:
        while not queue:
            mailbox.event = anyio.Event()
            await mailbox.event.wait()
        message = queue.popleft()
        if message is _STOP:
            return
        assert isinstance(message, int)
        sink.append(Emitted(message, 0))
        sink.append(Emitted(message, 1))
        sink.append(Emitted(message, 2))


async def floor_lifecycles(n: int) -> float:
    """Seconds for ``n`` bare spawn + one message + three events + stop lifecycles."""
    sink: list[Emitted] = []
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(n):
            mailbox = _BareMailbox()
            tg.start_soon(_bare_actor, mailbox, sink)
            mailbox.put(i)
            mailbox.put(_STOP)
    elapsed = time.perf_counter() - started
    assert len(sink) == 3 * n
    return elapsed


class _Emitter(Actor[int]):
    __slots__ = ("sink",)

    def __init__(self, sink: list[Emitted]) -> None:
        self.sink = sink

    async def receive(self, message: int) -> None:
        sink = self.sink
        sink.append(Emitted(message, 0))
        sink.append(Emitted(message, 1))
        sink.append(Emitted(message, 2))


async def actor_lifecycles(n: int) -> float:
    """Seconds for ``n`` actor spawn + one message + three events + stop lifecycles."""
    sink: list[Emitted] = []
    async with ActorSystem() as system:

        def factory() -> _Emitter:
            return _Emitter(sink)

        started = time.perf_counter()
        refs: list[ActorRef[int]] = []
        for i in range(n):
            ref = system.spawn(factory, name="emitter")
            ref.tell_nowait(i)
            ref.stop(drain=True)
            refs.append(ref)
        for ref in refs:
            await ref.join()
        elapsed = time.perf_counter() - started
    assert len(sink) == 3 * n
    return elapsed


class _Counter(Actor[int]):
    def __init__(self) -> None:
        self.total = 0

    async def receive(self, message: int) -> int:
        self.total += message
        return self.total


async def tell_throughput(n: int) -> float:
    """Seconds for one sender to ``tell`` ``n`` messages and the actor to handle them all."""
    async with ActorSystem() as system:
        ref = system.spawn(_Counter)
        started = time.perf_counter()
        for _ in range(n):
            await ref.tell(1)
        total = await ref.ask(0)
        elapsed = time.perf_counter() - started
    assert total == n
    return elapsed


async def ask_round_trips(n: int) -> float:
    """Seconds for ``n`` sequential asks."""
    async with ActorSystem() as system:
        ref = system.spawn(_Counter)
        started = time.perf_counter()
        for _ in range(n):
            await ref.ask(1)
        return time.perf_counter() - started


class _Idle(Actor[Any]):
    async def receive(self, message: Any) -> None:
        return None


async def kill_latencies(rounds: int, backlog: int) -> list[float]:
    """Seconds from ``kill()`` to the actor's death, each behind ``backlog`` queued messages."""
    samples: list[float] = []
    async with ActorSystem(mailbox_capacity=backlog + 1) as system:
        for _ in range(rounds):
            ref = system.spawn(_Idle)
            await ref.ask(None)  # running and waiting for mail
            for i in range(backlog):
                ref.tell_nowait(i)
            started = time.perf_counter()
            ref.kill()
            await ref.join()
            samples.append(time.perf_counter() - started)
    return samples


def _best_rate(samples: list[float], n: int) -> float:
    return n / median(samples)


async def _measure(quick: bool) -> list[Figure]:
    scale = 10 if quick else 1
    lifecycles = 20_000 // scale
    floor_samples: list[float] = []
    actor_samples: list[float] = []
    for _ in range(REPEATS):  # interleaved, so drift hits both alike
        floor_samples.append(await floor_lifecycles(lifecycles))
        actor_samples.append(await actor_lifecycles(lifecycles))
    floor_rate = _best_rate(floor_samples, lifecycles)
    actor_rate = _best_rate(actor_samples, lifecycles)

    tells = 200_000 // scale
    tell_rate = _best_rate([await tell_throughput(tells) for _ in range(REPEATS)], tells)
    asks = 50_000 // scale
    ask_rate = _best_rate([await ask_round_trips(asks) for _ in range(REPEATS)], asks)
    kills = await kill_latencies(200 // scale, 10_000)

    return [
        Figure(name="actors.tell", value=tell_rate, unit="msg/s", params={"messages": tells}),
        Figure(name="actors.ask", value=ask_rate, unit="round trips/s", params={"asks": asks}),
        Figure(
            name="actors.lifecycle.floor",
            value=floor_rate,
            unit="lifecycles/s",
            params={"lifecycles": lifecycles, "events_per_lifecycle": 3},
        ),
        Figure(
            name="actors.lifecycle",
            value=actor_rate,
            unit="lifecycles/s",
            ratio=actor_rate / floor_rate,
            ratio_to="floor",
            params={"lifecycles": lifecycles, "events_per_lifecycle": 3},
        ),
        Figure(
            name="actors.kill_latency.p50",
            value=percentile(kills, 50) * 1e6,
            unit="us",
            params={"backlog": 10_000, "rounds": len(kills)},
        ),
        Figure(
            name="actors.kill_latency.p99",
            value=percentile(kills, 99) * 1e6,
            unit="us",
            params={"backlog": 10_000, "rounds": len(kills)},
        ),
    ]


def run(quick: bool = False) -> list[Figure]:
    """Run the ``actors`` workload and return its figures."""
    return anyio.run(_measure, quick)
