"""The engine on flows: ordering, outputs, branches, flowable tasks, and the fold."""

from __future__ import annotations

import itertools

import msgspec

from runtime.engine import (
    Event,
    ExecutionEnded,
    LogEmitted,
    State,
    TaskRunCreated,
    TaskRunStateChanged,
    execution_json,
    fold,
)
from runtime.testing import CapturedExecution, run_flow


def flow(body: str, name: str = "f") -> str:
    return f"id: {name}\nnamespace: tests\n" + body


def starts(captured: CapturedExecution) -> list[str]:
    """Task ids in the order their task runs were created."""
    return [e.task_id for e in captured.events if isinstance(e, TaskRunCreated)]


def assert_fold_matches(captured: CapturedExecution) -> None:
    assert execution_json(fold(captured.events)) == execution_json(captured.execution)


async def test_sequential_tasks_see_earlier_outputs() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: a, type: Return, format: "one"}
  - {id: b, type: Return, format: "{{ outputs.a.value }} two"}
  - {id: c, type: Return, format: "{{ outputs.b.value }} three"}
outputs:
  - {id: result, type: STRING, value: "{{ outputs.c.value }}"}
"""
        )
    )
    assert captured.state == "SUCCESS"
    assert starts(captured) == ["a", "b", "c"]
    assert captured.execution.outputs == {"result": "one two three"}
    assert_fold_matches(captured)


async def test_loop_outputs_are_keyed_by_value_at_every_level() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - id: outer
    type: ForEach
    values: ["x", "y"]
    tasks:
      - id: inner
        type: ForEach
        values: [1, 2]
        tasks:
          - id: leaf
            type: Return
            format: "{{ parents[0].taskrun.value }}/{{ taskrun.value }}"
  - {id: pick, type: Return, format: "{{ outputs.leaf['y']['2'].value }}"}
"""
        )
    )
    assert captured.state == "SUCCESS"
    assert captured.outputs("pick") == {"value": "y/2"}
    assert sorted(t.value or "" for t in captured.task_runs("leaf")) == ["1", "1", "2", "2"]
    assert_fold_matches(captured)


async def test_for_each_concurrency_limit_is_respected() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - id: loop
    type: ForEach
    values: [1, 2, 3, 4, 5, 6]
    concurrencyLimit: 2
    tasks:
      - {id: nap, type: Sleep, duration: PT1S}
"""
        )
    )
    running = peak = 0
    naps = {t.id for t in captured.task_runs("nap")}
    for event in captured.events:
        if isinstance(event, TaskRunStateChanged) and event.task_run_id in naps:
            if event.state is State.RUNNING:
                running += 1
            elif event.state.terminal:
                running -= 1
        if type(event).__name__ == "AttemptStarted" and event.task_run_id in naps:
            running += 1
        peak = max(peak, running)
    assert captured.state == "SUCCESS"
    assert len(naps) == 6
    assert peak == 2


async def test_if_switch_and_dag() -> None:
    captured = await run_flow(
        flow(
            """
inputs:
  - {id: n, type: INT}
tasks:
  - id: check
    type: If
    condition: "{{ inputs.n > 2 }}"
    then: [{id: big, type: Return, format: big}]
    else: [{id: small, type: Return, format: small}]
  - id: route
    type: Switch
    value: "{{ inputs.n }}"
    cases:
      "3": [{id: three, type: Return, format: "3"}]
    defaults: [{id: other, type: Return, format: "?"}]
  - id: graph
    type: Dag
    tasks:
      - task: {id: last, type: Return, format: "{{ outputs.first.value }}+"}
        dependsOn: [first]
      - task: {id: first, type: Return, format: "1"}
"""
        ),
        {"n": 3},
    )
    assert captured.state == "SUCCESS"
    created = starts(captured)
    assert "big" in created
    assert "small" not in created
    assert "three" in created
    assert "other" not in created
    assert created.index("first") < created.index("last")
    assert captured.outputs("last") == {"value": "1+"}
    assert captured.outputs("route") == {"value": "3", "defaults": False}


async def test_switch_without_a_match_or_defaults_fails_with_a_log() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - id: route
    type: Switch
    value: "nope"
    cases:
      a: [{id: t, type: Return, format: a}]
"""
        )
    )
    assert captured.state == "FAILED"
    assert any("no case matches value 'nope'" in log.message for log in captured.logs)


async def test_errors_then_finally_then_after_execution() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: ok, type: Return, format: "x"}
  - {id: boom, type: Fail, errorMessage: "it broke"}
  - {id: never, type: Return, format: "x"}
errors:
  - id: handle
    type: Log
    message: "{% for l in errorLogs() %}{{ l.taskId }}: {{ l.message }}{% endfor %}"
finally:
  - {id: cleanup, type: Log, message: cleanup}
afterExecution:
  - {id: notify, type: Log, message: "ended {{ execution.id }}"}
"""
        )
    )
    assert captured.state == "FAILED"
    assert starts(captured) == ["ok", "boom", "handle", "cleanup", "notify"]
    assert any(log.message == "boom: it broke" for log in captured.logs)
    ended = [e for e in captured.events if isinstance(e, ExecutionEnded)]
    assert len(ended) == 1
    assert ended[0] is captured.events[-1]
    assert_fold_matches(captured)


async def test_a_failure_in_finally_fails_the_execution() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: ok, type: Return, format: "x"}
finally:
  - {id: broken, type: Fail}
"""
        )
    )
    assert captured.state == "FAILED"


async def test_allow_failure_and_allow_warning() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: tolerated, type: Fail, allowFailure: true}
  - {id: ignored, type: Fail, allowFailure: true, allowWarning: true}
  - {id: after, type: Return, format: "ran"}
"""
        )
    )
    states = {t.task_id: t.state.current for t in captured.execution.task_run_list}
    assert states == {"tolerated": State.WARNING, "ignored": State.SUCCESS, "after": State.SUCCESS}
    assert captured.state == "WARNING"


async def test_run_if_skips_falsy_and_fails_on_render_errors() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: yes, type: Return, format: "x", runIf: "{{ 1 == 1 }}"}
  - {id: no, type: Return, format: "x", runIf: "{{ 1 == 2 }}"}
  - {id: broken, type: Return, format: "x", runIf: "{{ missing.thing }}"}
"""
        )
    )
    states = {t.task_id: t.state.current for t in captured.execution.task_run_list}
    assert states == {"yes": State.SUCCESS, "no": State.SKIPPED, "broken": State.FAILED}
    assert captured.state == "FAILED"


async def test_task_timeout_fails_the_attempt() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: slow, type: Sleep, duration: PT1H, timeout: PT1S}
"""
        )
    )
    assert captured.state == "FAILED"
    [run] = captured.task_runs("slow")
    assert run.attempts is not None
    assert run.attempts[0].state.current is State.FAILED
    assert any(log.message == "Timeout after PT1S" for log in captured.logs)
    assert (run.state.end_date - run.state.start_date).total_seconds() == 1.0  # type: ignore[operator]


async def test_flow_output_that_cannot_render_fails_the_execution() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: a, type: Return, format: "x"}
outputs:
  - {id: bad, type: STRING, value: "{{ outputs.nothing.value }}"}
  - {id: number, type: INT, value: "{{ 40 + 2 }}"}
"""
        )
    )
    assert captured.state == "FAILED"
    assert captured.execution.outputs is None
    assert any("flow output 'bad'" in log.message for log in captured.logs)


async def test_flow_outputs_are_typed() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: a, type: Return, format: "x"}
outputs:
  - {id: number, type: INT, value: "{{ 40 + 2 }}"}
  - {id: flag, type: BOOLEAN, value: "true"}
  - {id: data, type: JSON, value: "{{ {'k': [1, 2]} }}"}
"""
        )
    )
    assert captured.state == "SUCCESS"
    assert captured.execution.outputs == {"number": 42, "flag": True, "data": {"k": [1, 2]}}


async def test_events_are_numbered_and_timestamped_in_order() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - id: loop
    type: ForEach
    values: [1, 2, 3]
    concurrencyLimit: 0
    tasks: [{id: nap, type: Sleep, duration: PT1S}]
"""
        )
    )
    events: list[Event] = captured.events
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.execution_id == captured.execution.id for e in events)
    assert all(a.time <= b.time for a, b in itertools.pairwise(events))
    encoded = msgspec.json.encode(events)
    assert b'"event":"TaskRunCreated"' in encoded


async def test_logs_carry_task_and_attempt() -> None:
    captured = await run_flow(
        flow(
            """
tasks:
  - {id: speak, type: Log, message: ["one", "two"], level: WARN}
"""
        )
    )
    logs = [log for log in captured.logs if log.task_id == "speak"]
    assert [(log.level, log.message, log.attempt) for log in logs] == [
        ("WARN", "one", 1),
        ("WARN", "two", 1),
    ]
    assert all(isinstance(log, LogEmitted) for log in logs)


async def test_replaying_events_twice_gives_the_same_document() -> None:
    from runtime.engine import ExecutionFold

    captured = await run_flow(flow("tasks:\n  - {id: a, type: Return, format: x}\n"))
    twice = ExecutionFold()
    twice.apply_all(captured.events)
    twice.apply_all(captured.events)
    assert twice.execution is not None
    assert execution_json(twice.execution) == execution_json(captured.execution)
