"""Kill, pause, resume, restart, replay, and the flow concurrency limit."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from actors import VirtualClock
from runtime.engine import ExecutionError, Runtime, State
from runtime.errors import InputValidationError
from runtime.flows import FlowRepository
from runtime.parsing import parse_flow
from runtime.store import ExecutionQuery

SLEEPY = """
id: sleepy
namespace: tests
tasks:
  - id: wait
    type: Parallel
    tasks:
      - {id: a, type: Sleep, duration: PT1H}
      - {id: b, type: Sleep, duration: PT1H}
  - {id: never, type: Return, format: x}
"""


async def test_kill_cancels_running_attempts_and_starts_nothing_more() -> None:
    async with Runtime(clock=VirtualClock(autojump=False)) as runtime:
        handle = await runtime.start(SLEEPY)
        await handle.wait_for_state(State.RUNNING)
        with anyio.fail_after(5):
            async for _ in handle.changes():
                if len(handle.execution.task_run_list) == 3:
                    break
        await handle.kill()
        execution = await handle.result()
    assert execution.state.current is State.KILLED
    assert [h.state for h in execution.state.histories][-2:] == [State.KILLING, State.KILLED]
    states = {t.task_id: t.state.current for t in execution.task_run_list}
    assert states == {"wait": State.KILLED, "a": State.KILLED, "b": State.KILLED}
    for task_run in execution.task_run_list:
        if task_run.attempts:
            assert task_run.attempts[-1].state.current is State.KILLED


async def test_kill_of_a_finished_execution_is_refused() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        handle = await runtime.start("id: f\nnamespace: t\ntasks: [{id: a, type: Return}]\n")
        await handle.result()
        with pytest.raises(ExecutionError, match="takes no commands"):
            await handle.kill()


PAUSE = """
id: approval
namespace: tests
tasks:
  - id: ask
    type: Pause
    onResume:
      - {id: approved, type: BOOLEAN}
      - {id: reason, type: STRING, required: false}
  - {id: after, type: Return, format: "{{ outputs.ask.onResume.approved }}"}
"""


async def test_manual_pause_resumes_with_typed_inputs() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        handle = await runtime.start(PAUSE)
        await handle.wait_for_state(State.PAUSED)
        with pytest.raises(InputValidationError, match="input 'approved'"):
            await handle.resume({"approved": "maybe"})
        assert handle.execution.state.current is State.PAUSED  # nothing resumed
        await handle.resume({"approved": "true"})
        execution = await handle.result()
    assert execution.state.current is State.SUCCESS
    states = [h.state for h in execution.state.histories]
    assert states[:5] == [
        State.CREATED,
        State.RUNNING,
        State.PAUSED,
        State.RESTARTED,
        State.RUNNING,
    ]
    ask = execution.task_run_list[0]
    assert ask.outputs == {"onResume": {"approved": True, "reason": None}}
    assert execution.task_run_list[1].outputs == {"value": "true"}


@pytest.mark.parametrize(
    ("properties", "task_state", "execution_state"),
    [
        ("delay: PT10S", State.SUCCESS, State.SUCCESS),
        ("timeout: PT10S", State.FAILED, State.FAILED),
        ("timeout: PT10S\n    behavior: WARN", State.WARNING, State.WARNING),
        ("timeout: PT10S\n    behavior: RESUME", State.SUCCESS, State.SUCCESS),
        ("pauseDuration: PT10S", State.SUCCESS, State.SUCCESS),
        ("pauseDuration: PT10S\n    behavior: FAIL", State.FAILED, State.FAILED),
    ],
)
async def test_pause_delays_and_timeouts(
    properties: str, task_state: State, execution_state: State
) -> None:
    clock = VirtualClock()
    flow = f"id: p\nnamespace: t\ntasks:\n  - id: p\n    type: Pause\n    {properties}\n"
    async with Runtime(clock=clock) as runtime:
        handle = await runtime.start(flow)
        execution = await handle.result()
    assert execution.task_run_list[0].state.current is task_state
    assert execution.state.current is execution_state
    assert clock.now() == pytest.approx(10.0)


async def test_any_running_execution_can_be_paused_and_resumed() -> None:
    flow = """
id: steps
namespace: t
tasks:
  - {id: one, type: Sleep, duration: PT10S}
  - {id: two, type: Return, format: x}
"""
    clock = VirtualClock(autojump=False)
    async with Runtime(clock=clock) as runtime:
        handle = await runtime.start(flow)
        await handle.wait_for_state(State.RUNNING)
        await handle.pause()
        assert handle.execution.state.current is State.PAUSED
        with pytest.raises(ExecutionError, match="only a RUNNING execution"):
            await handle.pause()
        await clock.advance(10.0)
        await anyio.wait_all_tasks_blocked()
        # "one" finished while paused; "two" waits for the resume
        assert [t.task_id for t in handle.execution.task_run_list] == ["one"]
        await handle.resume()
        await clock.advance(1.0)
        execution = await handle.result()
    assert execution.state.current is State.SUCCESS
    assert [t.task_id for t in execution.task_run_list] == ["one", "two"]


async def test_restart_reruns_failed_task_runs_in_place_keeping_attempts() -> None:
    flow = """
id: flaky
namespace: t
tasks:
  - {id: ok, type: Return, format: x}
  - {id: shaky, type: Log, message: "{{ taskrun.attemptsCount == 1 ? 'ok' : ko }}"}
"""
    async with Runtime(clock=VirtualClock()) as runtime:
        handle = await runtime.start(flow)
        failed = await handle.result()
        assert failed.state.current is State.FAILED
        snapshot = await handle.restart()
        assert snapshot.state.current is State.RESTARTED
        assert snapshot.task_run_list[1].state.current is State.RESTARTED
        execution = await handle.result()
    assert execution.id == failed.id
    assert execution.state.current is State.SUCCESS
    ok, shaky = execution.task_run_list
    assert len(ok.attempts or ()) == 1
    assert [a.state.current for a in shaky.attempts or ()] == [State.FAILED, State.SUCCESS]


async def test_replay_makes_a_new_execution_from_a_task_run() -> None:
    flow = """
id: replayable
namespace: t
tasks:
  - {id: first, type: Return, format: "one"}
  - {id: second, type: Return, format: "{{ outputs.first.value }}-two"}
"""
    async with Runtime(clock=VirtualClock()) as runtime:
        original = await runtime.run(flow)
        second = original.task_run_list[1]
        replay = await runtime.replay(original.id, second.id)
        execution = await replay.result()
    assert execution.id != original.id
    assert execution.parent_id == original.id
    assert execution.state.current is State.SUCCESS
    first, second_again = execution.task_run_list
    assert first.outputs == {"value": "one"}
    assert len(second_again.attempts or ()) == 2
    assert second_again.outputs == {"value": "one-two"}


@pytest.mark.parametrize(
    ("behavior", "second_state"),
    [("CANCEL", State.CANCELLED), ("FAIL", State.FAILED), ("QUEUE", State.SUCCESS)],
)
async def test_flow_concurrency_limit(behavior: str, second_state: State) -> None:
    flow = parse_flow(
        f"""
id: limited
namespace: t
concurrency: {{limit: 1, behavior: {behavior}}}
tasks:
  - {{id: nap, type: Sleep, duration: PT10S}}
"""
    )
    async with Runtime(clock=VirtualClock(), flows=FlowRepository()) as runtime:
        first = await runtime.start(flow)
        second = await runtime.start(flow)
        first_done = await first.result()
        second_done = await second.result()
    assert first_done.state.current is State.SUCCESS
    assert second_done.state.current is second_state
    if behavior == "QUEUE":
        states = [h.state for h in second_done.state.histories]
        assert states[:3] == [State.CREATED, State.QUEUED, State.RUNNING]
        assert second_done.task_run_list[0].state.start_date >= first_done.state.end_date  # type: ignore[operator]


async def test_missing_required_inputs_fail_before_anything_runs() -> None:
    flow = "id: f\nnamespace: t\ninputs: [{id: n, type: INT}]\ntasks: [{id: a, type: Return}]\n"
    async with Runtime(clock=VirtualClock()) as runtime:
        with pytest.raises(InputValidationError, match="input 'n' is required"):
            await runtime.start(flow)
        assert runtime.executions() == []


MARKABLE = """
id: markable
namespace: tests
tasks:
  - {id: broken, type: io.kestra.plugin.core.execution.Fail, errorMessage: "no"}
  - {id: after, type: Return, format: "ran"}
errors:
  - {id: alert, type: Log, message: "failed"}
"""


async def test_a_task_run_set_to_success_by_hand_lets_the_execution_run_on() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        failed = await runtime.run(MARKABLE)
        assert failed.state.current is State.FAILED
        broken = failed.task_run_list[0]
        assert [t.task_id for t in failed.task_run_list] == ["broken", "alert"]
        restarted = await runtime.set_task_run_state(failed.id, broken.id, State.SUCCESS)
        assert restarted.state.current is State.RESTARTED
        done = await runtime.handle(failed.id).result()
    assert done.state.current is State.SUCCESS
    assert [t.task_id for t in done.task_run_list] == ["broken", "after"]  # errors branch dropped
    marked = done.task_run_list[0]
    assert marked.state.current is State.SUCCESS
    assert marked.attempts is not None
    assert marked.attempts[-1].state.current is State.SUCCESS
    assert done.task_run_list[1].outputs == {"value": "ran"}


async def test_changing_task_run_state_is_refused_where_it_makes_no_sense() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        failed = await runtime.run(MARKABLE)
        with pytest.raises(ExecutionError, match="no task run nope"):
            await runtime.set_task_run_state(failed.id, "nope", State.SUCCESS)
        with pytest.raises(ExecutionError, match="not RUNNING"):
            await runtime.set_task_run_state(failed.id, failed.task_run_list[0].id, State.RUNNING)
        handle = await runtime.start(PAUSE)
        await handle.wait_for_state(State.PAUSED)
        with pytest.raises(ExecutionError, match="only a finished execution"):
            await runtime.set_task_run_state(
                handle.id, handle.execution.task_run_list[0].id, State.SUCCESS
            )
        assert (await runtime.get_execution(failed.id)).state.current is State.FAILED  # type: ignore[union-attr]


async def test_the_status_of_a_finished_execution_changes_by_hand(tmp_path: Path) -> None:
    async with Runtime(data_dir=tmp_path, clock=VirtualClock()) as runtime:
        failed = await runtime.run(MARKABLE)
        changed = await runtime.change_status(failed.id, State.SUCCESS)
        with pytest.raises(ExecutionError, match="final state"):
            await runtime.change_status(failed.id, State.RUNNING)
        handle = await runtime.start(PAUSE)
        await handle.wait_for_state(State.PAUSED)
        with pytest.raises(ExecutionError, match="only a finished execution"):
            await runtime.change_status(handle.id, State.CANCELLED)
        await handle.kill()
    assert changed.state.current is State.SUCCESS
    assert [h.state for h in changed.state.histories][-2:] == [State.FAILED, State.SUCCESS]
    async with Runtime(data_dir=tmp_path, recover=False) as runtime:
        stored = await runtime.get_execution(failed.id)
        page = await runtime.store.search(ExecutionQuery(states=[State.SUCCESS]))
    assert stored is not None
    assert stored.state.current is State.SUCCESS
    assert [e.id for e in page.items] == [failed.id]
