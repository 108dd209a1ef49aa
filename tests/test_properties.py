"""Property tests: lane ordering, stash order, backoff bounds, restart intensity."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import anyio
import anyio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import (
    Actor,
    ActorSystem,
    ConstantBackoff,
    ExponentialBackoff,
    RandomBackoff,
    RestartIntensity,
    control_message,
)
from actors._policy import RestartWindow


@control_message
class Ctl:
    __slots__ = ("pauses", "seq")

    def __init__(self, seq: int, pauses: int) -> None:
        self.seq = seq
        self.pauses = pauses


class Data:
    __slots__ = ("pauses", "seq")

    def __init__(self, seq: int, pauses: int) -> None:
        self.seq = seq
        self.pauses = pauses


class Probe(Actor[Any]):
    """Records (kind, seq, messages sent so far) when it starts handling each message."""

    def __init__(self, record: list[tuple[str, int, int]], sent: list[int]) -> None:
        self.record = record
        self.sent = sent

    async def receive(self, message: Any) -> None:
        kind = "control" if isinstance(message, Ctl) else "data"
        self.record.append((kind, message.seq, self.sent[0]))
        for _ in range(message.pauses):
            await anyio.lowlevel.checkpoint()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.integers(0, 3)),
        st.tuples(st.just("control"), st.integers(0, 3)),
        st.tuples(st.just("yield"), st.integers(1, 4)),
    ),
    max_size=60,
)


@settings(deadline=None, max_examples=150)
@given(operations)
def test_control_is_always_served_before_waiting_data(ops: list[tuple[str, int]]) -> None:
    log: list[tuple[str, int, int]] = []
    sent = [0]
    kinds: dict[int, str] = {}

    async def scenario() -> None:
        async with ActorSystem(mailbox_capacity=1000) as system:
            ref = system.spawn(lambda: Probe(log, sent))
            for op, arg in ops:
                if op == "yield":
                    for _ in range(arg):
                        await anyio.lowlevel.checkpoint()
                    continue
                seq = sent[0]
                kinds[seq] = op
                sent[0] += 1
                ref.tell_nowait(Ctl(seq, arg) if op == "control" else Data(seq, arg))
            kinds[sent[0]] = "data"
            sent[0] += 1
            await ref.ask(Data(sent[0] - 1, 0))  # drains both lanes before the shutdown

    anyio.run(scenario)
    # Everything sent was handled, each lane in FIFO order.
    assert sorted(seq for _, seq, _ in log) == list(range(sent[0]))
    for lane in ("control", "data"):
        seqs = [seq for kind, seq, _ in log if kind == lane]
        assert seqs == sorted(seqs)
    # When a data message was taken, every control message already sent had been taken.
    handled_before: set[int] = set()
    for kind, seq, sent_then in log:
        if kind == "data":
            waiting = [s for s in range(sent_then) if kinds[s] == "control"]
            assert all(s in handled_before for s in waiting), (seq, waiting)
        handled_before.add(seq)


@settings(deadline=None, max_examples=150)
@given(
    st.lists(
        st.sampled_from(["send", "send", "send", "pause", "resume", "yield"]),
        max_size=60,
    )
)
def test_stash_replays_in_send_order_after_resume(ops: list[str]) -> None:
    handled: list[int] = []

    class Sink(Actor[int]):
        async def receive(self, message: int) -> None:
            handled.append(message)
            await anyio.lowlevel.checkpoint()

    sent: list[int] = []

    async def scenario() -> None:
        async with ActorSystem(mailbox_capacity=1000, stash_capacity=1000) as system:
            ref = system.spawn(Sink)
            for op in ops:
                if op == "send":
                    sent.append(len(sent))
                    await ref.tell(sent[-1])
                elif op == "pause":
                    ref.pause()
                elif op == "resume":
                    ref.resume()
                else:
                    await anyio.lowlevel.checkpoint()
            ref.resume()
            await ref.ask(-1)

    anyio.run(scenario)
    assert handled == [*sent, -1]


delays = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
jitters = st.floats(0, 1, allow_nan=False)


@given(delays, jitters, st.integers(1, 10_000), st.integers(0, 2**32))
def test_constant_backoff_stays_within_its_jitter(
    interval: float, jitter: float, restart: int, seed: int
) -> None:
    value = ConstantBackoff(interval, jitter).delay(restart, random.Random(seed))
    assert interval * (1 - jitter) - 1e-6 <= value <= interval * (1 + jitter) + 1e-6


@given(
    delays,
    st.floats(1, 10, allow_nan=False),
    st.one_of(st.none(), delays),
    jitters,
    st.integers(0, 2**32),
)
def test_exponential_backoff_grows_and_never_passes_its_cap(
    interval: float, factor: float, cap: float | None, jitter: float, seed: int
) -> None:
    rng = random.Random(seed)
    plain = ExponentialBackoff(interval, factor, cap)
    jittered = ExponentialBackoff(interval, factor, cap, jitter)
    previous = 0.0
    for restart in range(1, 60):
        value = plain.delay(restart, rng)
        assert value >= previous
        previous = value
        if cap is not None:
            assert value <= cap
            assert jittered.delay(restart, rng) <= cap
        assert jittered.delay(restart, rng) >= 0


@given(delays, delays, st.integers(1, 100), st.integers(0, 2**32))
def test_random_backoff_draws_within_its_bounds(
    a: float, b: float, restart: int, seed: int
) -> None:
    low, high = min(a, b), max(a, b)
    value = RandomBackoff(low, high).delay(restart, random.Random(seed))
    assert low <= value <= high


@given(
    st.integers(0, 5),
    st.floats(0.5, 20, allow_nan=False),
    st.lists(st.floats(0, 10, allow_nan=False), max_size=40),
)
def test_intensity_trips_exactly_when_a_window_holds_too_many_restarts(
    max_restarts: int, within: float, gaps: list[float]
) -> None:
    window = RestartWindow(RestartIntensity(max_restarts, within))
    times: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        times.append(now)
        in_window = deque(t for t in times if t >= now - within)
        assert window.record(now) == (len(in_window) > max_restarts)
