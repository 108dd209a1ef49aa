"""Retries: every policy, on virtual time, at task, flowable and flow level."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from runtime.engine import State, TaskRunStateChanged
from runtime.model._execution import TaskRun
from runtime.testing import CapturedExecution, run_flow

FLAKY = """
id: flaky
namespace: tests
tasks:
  - id: t
    type: Log
    message: "{{ taskrun.attemptsCount >= SUCCEED_AT ? 'ok' : undefined_name }}"
    retry: RETRY
"""


def flaky(retry: str, succeed_at: int = 99, extra: str = "") -> str:
    return FLAKY.replace("SUCCEED_AT", str(succeed_at)).replace("RETRY", retry) + extra


def attempt_starts(run: TaskRun) -> list[float]:
    assert run.attempts is not None
    first = run.attempts[0].state.start_date
    return [(a.state.start_date - first).total_seconds() for a in run.attempts]


def only_run(captured: CapturedExecution, task_id: str = "t") -> TaskRun:
    [run] = captured.task_runs(task_id)
    return run


async def test_constant_retry_waits_its_interval_and_counts_every_attempt() -> None:
    captured = await run_flow(flaky("{type: constant, interval: PT10S, maxAttempt: 4}"))
    run = only_run(captured)
    assert captured.state == "FAILED"
    assert attempt_starts(run) == [0.0, 10.0, 20.0, 30.0]
    assert [a.state.current for a in run.attempts or ()] == [State.FAILED] * 4
    history = [h.state for h in run.state.histories]
    assert history == [
        State.CREATED,
        State.RUNNING,
        State.RETRYING,
        State.RUNNING,
        State.RETRYING,
        State.RUNNING,
        State.RETRYING,
        State.RUNNING,
        State.FAILED,
    ]


async def test_attempts_count_is_k_minus_one_in_attempt_k() -> None:
    captured = await run_flow(flaky("{type: constant, interval: PT1S, maxAttempt: 4}", 2))
    run = only_run(captured)
    assert captured.state == "SUCCESS"
    assert len(run.attempts or ()) == 3


async def test_exponential_retry_doubles_up_to_its_cap() -> None:
    captured = await run_flow(
        flaky("{type: exponential, interval: PT1S, maxInterval: PT5S, maxAttempt: 6}")
    )
    assert attempt_starts(only_run(captured)) == [0.0, 1.0, 3.0, 7.0, 12.0, 17.0]


async def test_exponential_retry_with_a_delay_factor() -> None:
    captured = await run_flow(
        flaky(
            "{type: exponential, interval: PT1S, maxInterval: PT1M, delayFactor: 3, maxAttempt: 4}"
        )
    )
    assert attempt_starts(only_run(captured)) == [0.0, 1.0, 4.0, 13.0]


async def test_random_retry_stays_within_its_bounds() -> None:
    captured = await run_flow(
        flaky("{type: random, minInterval: PT2S, maxInterval: PT4S, maxAttempt: 5}")
    )
    starts = attempt_starts(only_run(captured))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 4
    assert all(2.0 <= gap <= 4.0 for gap in gaps)


async def test_max_duration_bounds_the_series() -> None:
    captured = await run_flow(flaky("{type: constant, interval: PT2S, maxDuration: PT7S}"))
    assert attempt_starts(only_run(captured)) == [0.0, 2.0, 4.0, 6.0]


async def test_warning_on_retry_turns_a_late_success_into_warning() -> None:
    late = await run_flow(
        flaky("{type: constant, interval: PT1S, maxAttempt: 3, warningOnRetry: true}", 1)
    )
    assert late.state == "WARNING"
    assert only_run(late).state.current is State.WARNING
    first_time = await run_flow(
        flaky("{type: constant, interval: PT1S, maxAttempt: 3, warningOnRetry: true}", 0)
    )
    assert first_time.state == "SUCCESS"


async def test_a_task_without_retry_uses_its_flowable_parent_then_the_flow() -> None:
    captured = await run_flow(
        """
id: inherit
namespace: tests
retry: {type: constant, interval: PT1S, maxAttempt: 2}
tasks:
  - id: seq
    type: Sequential
    retry: {type: constant, interval: PT1S, maxAttempt: 3}
    tasks:
      - {id: in-seq, type: Fail}
  - id: top
    type: Fail
    allowFailure: true
"""
    )
    assert len(only_run(captured, "in-seq").attempts or ()) == 3


async def test_flow_level_retry_applies_when_nothing_closer_has_one() -> None:
    captured = await run_flow(
        """
id: flow-retry
namespace: tests
retry: {type: constant, interval: PT1S, maxAttempt: 2}
tasks:
  - {id: t, type: Fail}
"""
    )
    assert len(only_run(captured).attempts or ()) == 2


async def test_create_new_execution_chains_executions_by_parent_id() -> None:
    from actors import VirtualClock
    from runtime.engine import Runtime

    flow = """
id: chain
namespace: tests
tasks:
  - id: t
    type: Fail
    retry: {type: constant, interval: PT30S, maxAttempt: 3, behavior: CREATE_NEW_EXECUTION}
"""
    clock = VirtualClock()
    async with Runtime(clock=clock) as runtime:
        first = await runtime.start(flow)
        await first.result()
        await runtime.wait_idle()
        executions = runtime.executions()
    assert [e.state.current for e in executions] == [State.RETRIED, State.RETRIED, State.FAILED]
    assert executions[0].parent_id is None
    assert executions[1].parent_id == executions[0].id
    assert executions[2].parent_id == executions[1].id
    assert [e.metadata["attemptNumber"] for e in executions] == [1, 2, 3]
    assert executions[0].task_run_list[0].state.current is State.RETRIED
    starts: list[datetime] = [e.state.start_date for e in executions]
    assert (starts[1] - starts[0]).total_seconds() == pytest.approx(30.0)


async def test_retrying_is_visible_while_waiting() -> None:
    captured = await run_flow(flaky("{type: constant, interval: PT5S, maxAttempt: 2}"))
    retrying = [
        e
        for e in captured.events
        if isinstance(e, TaskRunStateChanged) and e.state is State.RETRYING
    ]
    assert len(retrying) == 1
