"""Clocks: the virtual clock that tests drive, and the real one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from actors import RealClock, VirtualClock


async def test_autojump_makes_a_long_sleep_take_no_real_time() -> None:
    clock = VirtualClock()
    async with clock.running():
        with anyio.fail_after(5):  # real seconds: a broken clock fails here
            await clock.sleep(30 * 24 * 3600.0)
    assert clock.now() == 30 * 24 * 3600.0


async def test_sleepers_wake_in_deadline_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with clock.running(), anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "late", 20.0)
        tg.start_soon(sleeper, "early", 5.0)
        tg.start_soon(sleeper, "middle", 10.0)
    assert woke == [("early", 5.0), ("middle", 10.0), ("late", 20.0)]


async def test_manual_advance_fires_only_what_is_due() -> None:
    clock = VirtualClock(autojump=False)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "a", 1.0)
        tg.start_soon(sleeper, "b", 3.0)
        await anyio.wait_all_tasks_blocked()
        await clock.advance(2.0)
        assert woke == ["a"]
        assert clock.now() == 2.0
        assert clock.pending == 1
        await clock.advance(1.0)
    assert woke == ["a", "b"]


async def test_fail_after_times_out_on_virtual_time() -> None:
    clock = VirtualClock()
    async with clock.running():
        with pytest.raises(TimeoutError), clock.fail_after(60.0):
            await clock.sleep(3600.0)
        assert clock.now() == 60.0
        with clock.fail_after(60.0):
            await clock.sleep(10.0)
        assert clock.now() == 70.0
        assert clock.pending == 0  # the unused timeout's timer was dropped


async def test_cancelled_sleep_leaves_no_live_timer() -> None:
    clock = VirtualClock(autojump=False)
    with anyio.move_on_after(0.01):
        await clock.sleep(100.0)
    assert clock.pending == 0


async def test_utcnow_follows_virtual_time() -> None:
    epoch = datetime(2030, 5, 1, tzinfo=UTC)
    clock = VirtualClock(epoch=epoch)
    async with clock.running():
        await clock.sleep(90.0)
    assert clock.utcnow() == epoch + timedelta(seconds=90)


async def test_real_clock_sleeps_and_times_out() -> None:
    clock = RealClock()
    before = clock.now()
    await clock.sleep(0.01)
    assert clock.now() > before
    assert clock.utcnow().tzinfo is UTC
    with pytest.raises(TimeoutError), clock.fail_after(0.01):
        await anyio.sleep(10)
