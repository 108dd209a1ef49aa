"""Recovery: a runtime that stopped without finishing resumes its executions from the store."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc

from actors import VirtualClock
from runtime.engine import ExecutionHandle, Runtime, State, execution_json, fold
from runtime.store import SqliteStore


async def crash_after(
    path: Path,
    flow: str,
    until: object,
    clock: VirtualClock,
) -> str:
    """Start ``flow``, wait until ``until(handle)`` holds, then stop abruptly (a crash)."""
    execution_id = ""
    with anyio.CancelScope() as scope:
        async with Runtime(data_dir=path, store=SqliteStore(path / "t.db"), clock=clock) as runtime:
            handle = await runtime.start(flow)
            execution_id = handle.id
            with anyio.fail_after(10):
                async for _ in handle.changes():
                    if until(handle):  # type: ignore[operator]
                        break
            await runtime.store.flush()  # what happened so far is durable...
            scope.cancel()  # ...then the process "dies": no graceful stop of the execution
            await anyio.sleep_forever()
    return execution_id


def task_state(handle: ExecutionHandle, task_id: str) -> State | None:
    for task_run in handle.execution.task_run_list:
        if task_run.task_id == task_id:
            return task_run.state.current
    return None


async def resume(path: Path, clock: VirtualClock, execution_id: str) -> tuple[object, object]:
    async with Runtime(data_dir=path, store=SqliteStore(path / "t.db"), clock=clock) as runtime:
        handle = runtime.handle(execution_id)
        with anyio.fail_after(10):
            execution = await handle.result()
        events = runtime.events_of(execution_id)
    async with SqliteStore(path / "t.db") as store:
        stored = await store.get_execution(execution_id)
        stored_events = await store.events(execution_id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)
    assert execution_json(fold(stored_events)) == execution_json(execution)
    assert [e.seq for e in stored_events] == [e.seq for e in events]
    return execution, events


FLOW = """
id: recoverable
namespace: tests
tasks:
  - {id: first, type: Return, format: "kept"}
  - id: slow
    type: Sleep
    duration: PT1H
    retry: {type: constant, interval: PT1S, maxAttempt: 3}
  - {id: last, type: Return, format: "{{ outputs.first.value }}"}
"""


async def test_a_lost_attempt_is_failed_and_retried_and_finished_work_is_kept(
    tmp_path: Path,
) -> None:
    first_clock = VirtualClock(autojump=False)
    execution_id = await crash_after(
        tmp_path, FLOW, lambda h: task_state(h, "slow") is State.RUNNING, first_clock
    )
    execution, events = await resume(tmp_path, VirtualClock(start=first_clock.now()), execution_id)
    assert execution.state.current is State.SUCCESS  # type: ignore[attr-defined]
    first, slow, last = execution.task_run_list  # type: ignore[attr-defined]
    assert len(first.attempts) == 1
    assert [a.state.current for a in slow.attempts] == [State.FAILED, State.SUCCESS]
    assert last.outputs == {"value": "kept"}
    messages = [getattr(e, "message", "") for e in events]  # type: ignore[attr-defined]
    assert any("the process running it was lost" in m for m in messages)


async def test_a_lost_attempt_without_retry_fails_the_task_run(tmp_path: Path) -> None:
    flow = FLOW.replace("    retry: {type: constant, interval: PT1S, maxAttempt: 3}\n", "")
    clock = VirtualClock(autojump=False)
    execution_id = await crash_after(
        tmp_path, flow, lambda h: task_state(h, "slow") is State.RUNNING, clock
    )
    execution, _ = await resume(tmp_path, VirtualClock(start=clock.now()), execution_id)
    assert execution.state.current is State.FAILED  # type: ignore[attr-defined]


async def test_a_pause_delay_is_rearmed_at_its_original_due_time(tmp_path: Path) -> None:
    flow = """
id: paused
namespace: tests
tasks:
  - {id: wait, type: Pause, delay: PT60S}
  - {id: after, type: Return, format: done}
"""
    clock = VirtualClock(autojump=False)

    async def until(handle: ExecutionHandle) -> bool:
        return task_state(handle, "wait") is State.PAUSED

    execution_id = ""
    with anyio.CancelScope() as scope:
        async with Runtime(
            data_dir=tmp_path, store=SqliteStore(tmp_path / "t.db"), clock=clock
        ) as runtime:
            handle = await runtime.start(flow)
            execution_id = handle.id
            await handle.wait_for_state(State.PAUSED)
            await clock.advance(20.0)
            await runtime.store.flush()
            scope.cancel()
            await anyio.sleep_forever()
    second = VirtualClock(start=clock.now())
    execution, _ = await resume(tmp_path, second, execution_id)
    assert execution.state.current is State.SUCCESS  # type: ignore[attr-defined]
    assert second.now() - clock.now() == 40.0  # 60 s after the pause, not 60 s after the restart
    wait = execution.task_run_list[0]  # type: ignore[attr-defined]
    assert [h.state for h in wait.state.histories].count(State.PAUSED) == 1


async def test_a_retry_wait_is_kept_across_a_restart(tmp_path: Path) -> None:
    flow = """
id: retrying
namespace: tests
tasks:
  - id: flaky
    type: Log
    message: "{{ taskrun.attemptsCount >= 1 ? 'ok' : nope }}"
    retry: {type: constant, interval: PT30S, maxAttempt: 2}
"""
    clock = VirtualClock(autojump=False)
    execution_id = await crash_after(
        tmp_path, flow, lambda h: task_state(h, "flaky") is State.RETRYING, clock
    )
    second = VirtualClock(start=clock.now())
    execution, _ = await resume(tmp_path, second, execution_id)
    assert execution.state.current is State.SUCCESS  # type: ignore[attr-defined]
    flaky = execution.task_run_list[0]  # type: ignore[attr-defined]
    assert [a.state.current for a in flaky.attempts] == [State.FAILED, State.SUCCESS]
    gap = flaky.attempts[1].state.start_date - flaky.attempts[0].state.end_date
    assert gap.total_seconds() == 30.0


async def test_state_documents_survive_a_restart(tmp_path: Path) -> None:
    flow = """
id: counter
namespace: tests
tasks:
  - {id: get, type: io.kestra.plugin.core.state.Get, name: hits}
  - {id: set, type: io.kestra.plugin.core.state.Set, name: hits, data: {count: "{{ (outputs.get.data.count ?? 0) + 1 }}"}}
"""
    for expected in ({}, {"count": "1"}):
        async with Runtime(data_dir=tmp_path) as runtime:
            execution = await runtime.run(flow)
        assert execution.task_run_list[0].outputs["data"] == expected  # type: ignore[index]


async def test_a_finished_execution_is_readable_after_a_restart(tmp_path: Path) -> None:
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(FLOW.replace("PT1H", "PT0S"))
    async with Runtime(data_dir=tmp_path) as runtime:
        assert await runtime.recover() == []
        stored = await runtime.store.get_execution(execution.id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)


GRACEFUL = """
id: graceful
namespace: tests
tasks:
  - {id: first, type: Return, format: "kept"}
  - {id: slow, type: Sleep, duration: PT0.5S}
  - {id: last, type: Return, format: "{{ outputs.first.value }}"}
"""


async def test_a_graceful_stop_keeps_the_attempt_that_finished_within_the_deadline(
    tmp_path: Path,
) -> None:
    """Regression: a stop dead-lettered the result of an attempt that finished during the
    grace period, so recovery ran the task a second time."""
    async with Runtime(data_dir=tmp_path, shutdown_timeout=10) as runtime:
        handle = await runtime.start(GRACEFUL)
        with anyio.fail_after(10):
            async for _ in handle.changes():
                if task_state(handle, "slow") is State.RUNNING:
                    break
    # leaving the block quiesced the runtime: slow finished, last was not started
    async with Runtime(data_dir=tmp_path, recover=False) as runtime:
        stopped = await runtime.store.get_execution(handle.id)
    assert stopped is not None
    assert stopped.state.current is State.RUNNING
    states = {t.task_id: t.state.current for t in stopped.task_run_list}
    assert states["slow"] is State.SUCCESS
    assert states.get("last", State.CREATED) is State.CREATED
    async with Runtime(data_dir=tmp_path) as runtime:
        handle = await runtime.lookup(handle.id)
        with anyio.fail_after(10):
            done = await handle.result()
    assert done.state.current is State.SUCCESS
    slow = next(t for t in done.task_run_list if t.task_id == "slow")
    assert len(slow.attempts or []) == 1
    assert done.task_run_list[-1].outputs == {"value": "kept"}


async def test_a_graceful_stop_does_not_wait_out_a_retry_interval(tmp_path: Path) -> None:
    flow = """
id: waiting
namespace: tests
tasks:
  - id: flaky
    type: Log
    message: "{{ taskrun.attemptsCount >= 1 ? 'ok' : nope }}"
    retry: {type: constant, interval: PT1H, maxAttempt: 2}
"""
    clock = VirtualClock(autojump=False)
    async with Runtime(
        data_dir=tmp_path, store=SqliteStore(tmp_path / "t.db"), clock=clock
    ) as runtime:
        handle = await runtime.start(flow)
        await handle.wait_for_state(State.RUNNING)
        with anyio.fail_after(10):
            async for _ in handle.changes():
                if task_state(handle, "flaky") is State.RETRYING:
                    break
        with anyio.fail_after(5):  # real seconds: the hour of virtual time is not waited
            assert await runtime.quiesce(60)
    second = VirtualClock(start=clock.now())
    execution, _ = await resume(tmp_path, second, handle.id)
    assert execution.state.current is State.SUCCESS  # type: ignore[attr-defined]
    assert second.now() - clock.now() == 3600.0
