"""Schedule triggers: exact dates on virtual time, restarts, missed-date policies, crash
safety, daylight saving, conditions, flow changes."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from structlog.testing import capture_logs

from actors import VirtualClock
from runtime.engine import Execution, ExecutionHandle, Runtime
from runtime.errors import FlowValidationError
from runtime.expressions import ExpressionEngine
from runtime.model import Flow
from runtime.parsing import parse_flow
from runtime.scheduling import (
    TRIGGERS_NAMESPACE,
    ConditionContext,
    ConditionError,
    MissedSchedules,
    Scheduler,
    holds,
    schedule_execution_id,
)
from runtime.store import ExecutionQuery, SqliteStore

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


def ticker(
    cron: str = "* * * * *", extra: str = "", flow_id: str = "ticker", head: str = ""
) -> str:
    """A flow whose Schedule trigger ``tick`` has ``cron`` and the ``extra`` properties."""
    trigger = (
        f"  - id: tick\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: '{cron}'\n"
    )
    trigger += textwrap.indent(textwrap.dedent(extra), "    ")
    return (
        f"id: {flow_id}\nnamespace: tests\n{head}"
        "tasks:\n  - {id: log, type: Log, message: '{{ trigger.date }}'}\n"
        f"triggers:\n{trigger}"
    )


class CountingRuntime(Runtime):
    """A runtime that counts the starts of each execution id (a double start shows)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.starts: Counter[str | None] = Counter()

    async def start(self, flow: Any, inputs: Any = None, **options: Any) -> ExecutionHandle:
        self.starts[options.get("execution_id")] += 1
        return await super().start(flow, inputs, **options)


class Node:
    """One process: a runtime on the test's data folder, with a Scheduler running."""

    def __init__(self, runtime: CountingRuntime, scheduler: Scheduler, clock: VirtualClock) -> None:
        self.runtime = runtime
        self.scheduler = scheduler
        self.clock = clock

    async def advance(self, seconds: float, step: float = 60.0) -> None:
        """Move virtual time on, letting the scheduler handle what comes due at each step."""
        target = self.clock.now() + seconds
        while self.clock.now() < target:
            await self.clock.advance(min(step, target - self.clock.now()))
            await self.scheduler.wait_idle()
        await self.runtime.wait_idle()

    async def set_flows(self, *texts: str) -> None:
        """Make ``texts`` the runtime's flows (others are deleted) and tell the scheduler."""
        flows = [parse_flow(text) for text in texts]
        wanted = {(f.namespace, f.id) for f in flows}
        for known in self.runtime.flows.all():
            if (known.namespace, known.id) not in wanted:
                await self.runtime.delete_flow(known.namespace, known.id)
        for flow in flows:
            await self.runtime.register_flow(flow)
        self.scheduler.flows_changed()
        await self.scheduler.wait_idle()

    async def executions(self) -> list[Execution]:
        """Every execution in the store, by schedule date."""
        await self.runtime.wait_idle()
        page = await self.runtime.store.search(ExecutionQuery(size=10_000))
        return sorted(page.items, key=lambda e: _instant(scheduled(e)))

    async def dates(self, flow_id: str | None = None) -> list[str]:
        """The ``trigger.date`` of every execution, in order; each date at most once."""
        found = [
            scheduled(e) for e in await self.executions() if flow_id is None or e.flow_id == flow_id
        ]
        assert len(found) == len(set(found)), f"a date fired twice: {found}"
        assert max(self.runtime.starts.values(), default=0) <= 1, "an execution started twice"
        return found

    async def state(self, key: str = "tests/ticker/tick") -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self.runtime.store.kv_get(
            TRIGGERS_NAMESPACE, key, self.clock.utcnow()
        )
        return value


def scheduled(execution: Execution) -> str:
    assert execution.trigger is not None
    date: str = execution.trigger["variables"]["date"]
    return date


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def minutes(*values: int, hour: int = 0) -> list[str]:
    return [f"2026-01-01T{hour:02d}:{m:02d}:00Z" for m in values]


@asynccontextmanager
async def node(
    path: Path,
    clock: VirtualClock,
    *flows: str,
    store: SqliteStore | None = None,
    **options: Any,
) -> AsyncIterator[Node]:
    """A runtime with ``flows`` and a running Scheduler; stopped cleanly at the end."""
    store = store or SqliteStore(path / "t.db")
    async with CountingRuntime(data_dir=path, clock=clock, store=store) as runtime:
        for text in flows:
            await runtime.register_flow(parse_flow(text))
        scheduler = Scheduler(runtime, **options)
        async with anyio.create_task_group() as group:
            await group.start(scheduler.run)
            await scheduler.wait_idle()
            yield Node(runtime, scheduler, clock)
            await scheduler.wait_idle()
            await runtime.wait_idle()
            group.cancel_scope.cancel()


def clock_at(seconds: float = 0.0, epoch: datetime = EPOCH) -> VirtualClock:
    return VirtualClock(start=seconds, epoch=epoch, autojump=False)


# -- firing ----------------------------------------------------------------------------------


async def test_a_schedule_fires_every_minute_at_exact_dates(tmp_path: Path) -> None:
    clock = clock_at()
    async with node(tmp_path, clock, ticker()) as n:
        await n.advance(3 * 60 + 30)
        executions = await n.executions()
    assert [scheduled(e) for e in executions] == minutes(1, 2, 3)
    first = executions[0]
    assert first.trigger == {
        "id": "tick",
        "type": "io.kestra.plugin.core.trigger.Schedule",
        "variables": {
            "date": "2026-01-01T00:01:00Z",
            "next": "2026-01-01T00:02:00Z",
            "previous": "2026-01-01T00:00:00Z",
        },
    }
    assert first.id == schedule_execution_id(
        "tests", "ticker", "tick", EPOCH + timedelta(minutes=1)
    )
    assert first.state.start_date == EPOCH + timedelta(minutes=1)
    assert first.task_run_list[0].state.current.value == "SUCCESS"


async def test_the_state_is_saved_after_each_date(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), ticker()) as n:
        assert await n.state() == {"last": "2026-01-01T00:00:00Z"}  # first seen: from now
        await n.advance(120)
        assert await n.state() == {"last": "2026-01-01T00:02:00Z"}


async def test_the_next_date_is_known_before_it_fires(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(30), ticker("*/5 * * * *")) as n:
        [(key, due)] = n.scheduler.upcoming()
        assert (str(key), due) == ("tests/ticker/tick", EPOCH + timedelta(minutes=5))


async def test_trigger_inputs_and_labels_go_to_the_execution(tmp_path: Path) -> None:
    flow = ticker(
        extra="""
        inputs: {day: "{{ trigger.date | date('yyyy-MM-dd') }}", n: 3}
        labels: {source: cron}
        """,
        head="labels: {team: data}\ninputs:\n  - {id: day, type: STRING}\n  - {id: n, type: INT}\n",
    )
    async with node(tmp_path, clock_at(), flow) as n:
        await n.advance(60)
        [execution] = await n.executions()
    assert execution.inputs == {"day": "2026-01-01", "n": 3}
    labels = {label.key: label.value for label in execution.labels}
    assert labels["team"] == "data"
    assert labels["source"] == "cron"


async def test_an_execution_that_cannot_start_counts_its_date_and_does_not_loop(
    tmp_path: Path,
) -> None:
    flow = ticker(head="inputs:\n  - {id: required, type: STRING}\n")
    with capture_logs() as logs:
        async with node(tmp_path, clock_at(), flow) as n:
            await n.advance(2 * 60)
            assert await n.executions() == []
            assert await n.state() == {"last": "2026-01-01T00:02:00Z"}
    failures = [e for e in logs if e["event"] == "the date's execution could not start"]
    assert [e["date"] for e in failures] == minutes(1, 2)
    assert all(e["log_level"] == "error" and "required" in e["error"] for e in failures)


async def test_seconds_precision_with_seconds(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), ticker("*/20 * * * * *", "withSeconds: true")) as n:
        await n.advance(60, step=5)
        assert await n.dates() == [
            "2026-01-01T00:00:20Z",
            "2026-01-01T00:00:40Z",
            "2026-01-01T00:01:00Z",
        ]


async def test_a_scheduler_runs_once_at_a_time(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), ticker()) as n:
        with pytest.raises(RuntimeError, match="already running"):
            await n.scheduler.run()


# -- restarts: missed dates ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (MissedSchedules.ALL, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        (MissedSchedules.LAST, [1, 2, 3, 10, 11]),
        (MissedSchedules.NONE, [1, 2, 3, 11]),
    ],
)
async def test_dates_missed_while_stopped_follow_the_policy(
    tmp_path: Path, policy: MissedSchedules, expected: list[int]
) -> None:
    first = clock_at()
    async with node(tmp_path, first, ticker(), missed=policy) as n:
        await n.advance(3 * 60 + 30)
    # Stopped from 00:03:30 to 00:10:30: 00:04 to 00:10 are missed.
    second = clock_at(first.now() + 7 * 60)
    with capture_logs() as logs:
        async with node(tmp_path, second, ticker(), missed=policy) as n:
            await n.runtime.wait_idle()
            await n.advance(60)
            assert await n.dates() == minutes(*expected)
    skipped = [e for e in logs if e["event"] == "missed dates are skipped (recoverMissedSchedules)"]
    if policy is MissedSchedules.ALL:
        assert skipped == []
    else:
        [warning] = skipped
        assert (warning["policy"], warning["skipped"]) == (policy.value, 7 - len(expected) + 4)


async def test_the_trigger_policy_overrides_the_scheduler_default(tmp_path: Path) -> None:
    flow = ticker(extra="recoverMissedSchedules: NONE")
    first = clock_at()
    async with node(tmp_path, first, flow, missed=MissedSchedules.ALL) as n:
        await n.advance(60)
    async with node(tmp_path, clock_at(first.now() + 330), flow) as n:
        assert await n.dates() == minutes(1)
        assert await n.state() == {"last": "2026-01-01T00:06:00Z"}


async def test_max_catch_up_fires_the_most_recent_and_says_how_many_were_skipped(
    tmp_path: Path,
) -> None:
    first = clock_at()
    async with node(tmp_path, first, ticker()) as n:
        await n.advance(60)
    with capture_logs() as logs:
        async with node(tmp_path, clock_at(first.now() + 600 + 30), ticker(), max_catch_up=3) as n:
            await n.runtime.wait_idle()
            assert await n.dates() == minutes(1, 9, 10, 11)
    [warning] = [e for e in logs if e["event"].startswith("missed dates beyond max_catch_up")]
    assert (warning["skipped"], warning["firing"], warning["log_level"]) == (7, 3, "warning")


async def test_late_maximum_delay_skips_dates_that_are_too_late(tmp_path: Path) -> None:
    flow = ticker(extra="lateMaximumDelay: PT3M")
    first = clock_at()
    async with node(tmp_path, first, flow) as n:
        await n.advance(60)
    with capture_logs() as logs:
        async with node(tmp_path, clock_at(first.now() + 600 + 30), flow) as n:
            await n.runtime.wait_idle()
            assert await n.dates() == minutes(1, 9, 10, 11)
    [warning] = [e for e in logs if "lateMaximumDelay" in e["event"]]
    assert warning["skipped"] == 7


class SimulatedCrashError(Exception):
    """The process died here."""


class CrashingStore(SqliteStore):
    """A store whose process dies when the scheduler saves that ``crash_at`` was handled."""

    def __init__(self, path: Path, crash_at: datetime) -> None:
        super().__init__(path)
        self.crash_at = crash_at

    async def kv_put(self, namespace: str, key: str, value: Any, expires: datetime | None) -> None:
        last = value.get("last") if namespace == TRIGGERS_NAMESPACE else None
        if last is not None and msgspec.convert(last, datetime) == self.crash_at:
            raise SimulatedCrashError
        await super().kv_put(namespace, key, value, expires)


async def test_a_crash_between_start_and_state_save_does_not_fire_twice(tmp_path: Path) -> None:
    first = clock_at()
    crash_at = EPOCH + timedelta(minutes=2)
    store = CrashingStore(tmp_path / "t.db", crash_at)
    with pytest.RaisesGroup(SimulatedCrashError, flatten_subgroups=True):
        async with node(tmp_path, first, ticker(), store=store) as n:
            await n.advance(5 * 60)
    # 00:02 started, but the state still says 00:01: the restart finds 00:02 started.
    with capture_logs() as logs:
        async with node(tmp_path, clock_at(first.now() + 30), ticker()) as n:
            await n.advance(60)
            last = int(n.clock.now() // 60)
            assert await n.dates() == minutes(*range(1, last + 1))
            crashed = schedule_execution_id("tests", "ticker", "tick", crash_at)
            assert n.runtime.starts[crashed] == 0
    again = [e for e in logs if e["event"] == "the date's execution had already started"]
    assert [e["date"] for e in again] == minutes(2)


# -- daylight saving ---------------------------------------------------------------------


async def test_spring_forward_fires_the_missing_time_once_shifted_forward(tmp_path: Path) -> None:
    flow = ticker("30 2 * * *", "timezone: Europe/Paris")
    clock = clock_at(epoch=datetime(2026, 3, 27, 12, tzinfo=UTC))
    async with node(tmp_path, clock, flow) as n:
        await n.advance(36 * 3600, step=3600)  # to 2026-03-29T00:00Z
        [(_, due)] = n.scheduler.upcoming()
        assert due == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
        await n.advance(50 * 3600, step=3600)
        assert await n.dates() == [
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:30:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
        ]


async def test_fall_back_fires_the_repeated_time_once(tmp_path: Path) -> None:
    flow = ticker("*/30 1 * * *", "timezone: America/New_York")
    clock = clock_at(epoch=datetime(2026, 10, 31, 12, tzinfo=UTC))
    async with node(tmp_path, clock, flow) as n:
        await n.advance(2 * 24 * 3600, step=1800)
        executions = await n.executions()
    assert [scheduled(e) for e in executions] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",  # 01:00 and 01:30 come again in EST: not fired again
        "2026-11-02T01:00:00-05:00",
        "2026-11-02T01:30:00-05:00",
    ]
    assert executions[1].trigger is not None
    assert executions[1].trigger["variables"]["next"] == "2026-11-02T01:00:00-05:00"


# -- conditions ----------------------------------------------------------------------------


async def test_dates_whose_conditions_do_not_hold_are_skipped(tmp_path: Path) -> None:
    flow = ticker(
        "0 9 * * *",
        """
        conditions:
          - type: io.kestra.plugin.core.condition.DayWeek
            dayOfWeek: MONDAY
        """,
    )
    async with node(tmp_path, clock_at(), flow) as n:
        await n.advance(14 * 24 * 3600, step=3600)
        executions = await n.executions()
    assert [scheduled(e) for e in executions] == [
        "2026-01-05T09:00:00Z",
        "2026-01-12T09:00:00Z",
    ]
    assert executions[0].trigger is not None
    variables = executions[0].trigger["variables"]
    assert (variables["previous"], variables["next"]) == (
        "2025-12-29T09:00:00Z",  # the nearest dates where the conditions hold
        "2026-01-12T09:00:00Z",
    )


async def test_last_recovers_the_latest_missed_date_whose_conditions_hold(tmp_path: Path) -> None:
    flow = ticker(
        "0 * * * *",
        """
        recoverMissedSchedules: LAST
        conditions:
          - type: io.kestra.core.models.conditions.types.VariableCondition
            expression: "{{ trigger.date | date('HH') == '03' }}"
        """,
    )
    first = clock_at()
    async with node(tmp_path, first, flow):
        pass
    async with node(tmp_path, clock_at(first.now() + 6 * 3600 + 60), flow) as n:
        assert await n.dates() == ["2026-01-01T03:00:00Z"]


def context(date: str) -> ConditionContext:
    variables = {"trigger": {"date": date}}
    return ConditionContext(ExpressionEngine(), variables)


def condition(spec: dict[str, Any]) -> Any:
    """A condition parsed as a Schedule's (JSON is YAML)."""
    flow = parse_flow(ticker(extra=f"conditions:\n  - {json.dumps(spec)}\n"))
    return flow.triggers[0].conditions[0]


NEW = "io.kestra.plugin.core.condition."
OLD = "io.kestra.core.models.conditions.types."
MONDAY = {"type": NEW + "DayWeek", "dayOfWeek": "MONDAY"}
WEEKEND = {"type": NEW + "Weekend"}
DAY_05 = "{{ trigger.date | date('dd') == '05' }}"


@pytest.mark.parametrize(
    ("spec", "date", "expected"),
    [
        (MONDAY, "2026-01-05T09:00:00Z", True),
        (MONDAY, "2026-01-06T09:00:00Z", False),
        # The date's own offset decides its day: Monday 00:30 in Paris is Sunday in UTC.
        (MONDAY, "2026-01-05T00:30:00+01:00", True),
        ({"type": OLD + "DayWeekCondition", "dayOfWeek": "SUNDAY"}, "2026-01-04", True),
        ({"type": NEW + "DayWeekCondition", "dayOfWeek": "SUNDAY"}, "2026-01-05", False),
        (
            {"type": NEW + "DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "FIRST"},
            "2026-01-05T09:00:00Z",
            True,
        ),
        (
            {"type": NEW + "DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "FIRST"},
            "2026-01-12T09:00:00Z",
            False,
        ),
        (
            {"type": NEW + "DayWeekInMonth", "dayOfWeek": "MONDAY", "dayInMonth": "SECOND"},
            "2026-01-12T09:00:00Z",
            True,
        ),
        (
            {"type": NEW + "DayWeekInMonth", "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"},
            "2026-01-30T09:00:00Z",
            True,
        ),
        (
            {"type": NEW + "DayWeekInMonth", "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"},
            "2026-01-23T09:00:00Z",
            False,
        ),
        (
            {
                "type": OLD + "DayWeekInMonthCondition",
                "dayOfWeek": "THURSDAY",
                "dayInMonth": "FOURTH",
            },
            "2026-01-22T09:00:00Z",
            True,
        ),
        (WEEKEND, "2026-01-03T09:00:00Z", True),
        ({"type": OLD + "WeekendCondition"}, "2026-01-02T09:00:00Z", False),
        (
            {
                "type": NEW + "DateTimeBetween",
                "after": "2026-01-01T00:00:00Z",
                "before": "2026-02-01T00:00:00Z",
            },
            "2026-01-15T00:00:00Z",
            True,
        ),
        (
            {"type": NEW + "DateTimeBetween", "after": "2026-01-15T00:00:00Z"},
            "2026-01-15T00:00:00Z",
            False,  # strictly after
        ),
        (
            {"type": OLD + "DateTimeBetweenCondition", "before": "2026-01-15T02:00:00+01:00"},
            "2026-01-15T00:59:59Z",
            True,
        ),
        (
            {"type": NEW + "TimeBetween", "after": "08:00:00Z", "before": "10:00:00Z"},
            "2026-01-15T09:00:00Z",
            True,
        ),
        ({"type": NEW + "TimeBetween", "after": "08:00:00+01:00"}, "2026-01-15T07:30:00Z", True),
        ({"type": NEW + "Not", "conditions": [WEEKEND]}, "2026-01-03T09:00:00Z", False),
        ({"type": OLD + "NotCondition", "conditions": [WEEKEND]}, "2026-01-05T09:00:00Z", True),
        ({"type": NEW + "Or", "conditions": [WEEKEND, MONDAY]}, "2026-01-05T09:00:00Z", True),
        ({"type": OLD + "OrCondition", "conditions": [WEEKEND]}, "2026-01-05T09:00:00Z", False),
        ({"type": NEW + "Expression", "expression": DAY_05}, "2026-01-05T09:00:00Z", True),
        ({"type": OLD + "VariableCondition", "expression": DAY_05}, "2026-01-06T09:00:00Z", False),
    ],
)
def test_date_conditions(spec: dict[str, Any], date: str, expected: bool) -> None:
    assert holds(condition(spec), context(date)) is expected


def test_a_condition_that_cannot_be_evaluated_raises() -> None:
    weekend = condition({"type": NEW + "Weekend", "date": "soon"})
    with pytest.raises(ConditionError, match="not an ISO-8601"):
        holds(weekend, context("x"))
    on_flow = condition({"type": NEW + "ExecutionFlow", "namespace": "a", "flowId": "b"})
    with pytest.raises(ConditionError, match="tests an execution"):
        holds(on_flow, context("2026-01-01T00:00:00Z"))


# -- flow changes, disabled, stopped ---------------------------------------------------------


async def test_flow_changes_take_effect_without_a_restart(tmp_path: Path) -> None:
    clock = clock_at()
    async with node(tmp_path, clock) as n:
        await n.advance(90)
        await n.set_flows(ticker("*/2 * * * *"))  # new at 00:01:30: from now on
        await n.advance(4 * 60)  # 00:02, 00:04
        await n.set_flows(ticker("*/5 * * * *"))  # changed at 00:05:30: from its last date
        await n.advance(5 * 60)  # 00:05 (missed since 00:04, ALL), 00:10
        await n.set_flows()  # removed: stops, forgets its state
        await n.advance(10 * 60)
        assert await n.state() is None
        assert await n.dates() == minutes(2, 4, 5, 10)


async def test_disabled_flows_and_triggers_fire_nothing_and_start_from_now_when_enabled(
    tmp_path: Path,
) -> None:
    async with node(tmp_path, clock_at(), ticker(extra="disabled: true")) as n:
        await n.advance(120)
        await n.set_flows(ticker(head="disabled: true\n"))
        await n.advance(120)
        assert await n.dates() == []
        await n.set_flows(ticker())  # enabled at 00:04: nothing missed
        await n.advance(120)
        assert await n.dates() == minutes(5, 6)


async def test_a_trigger_enabled_while_stopped_starts_from_now(tmp_path: Path) -> None:
    first = clock_at()
    async with node(tmp_path, first, ticker()) as n:
        await n.advance(60)
        await n.set_flows(ticker(extra="disabled: true"))
        await n.advance(60)
    async with node(tmp_path, clock_at(first.now() + 600), ticker()) as n:
        await n.advance(60)
        assert await n.dates() == minutes(1, 13)


async def test_stop_after_stops_the_trigger_until_it_changes(tmp_path: Path) -> None:
    failing = ticker(extra="stopAfter: [FAILED]").replace(
        "{id: log, type: Log, message: '{{ trigger.date }}'}",
        "{id: fail, type: Fail, errorMessage: boom}",
    )
    with capture_logs() as logs:
        async with node(tmp_path, clock_at(), failing) as n:
            await n.advance(3 * 60)
            assert await n.dates() == minutes(1)
            assert (await n.state() or {}).get("stopped") == "FAILED"
            await n.set_flows(failing.replace("boom", "boom again"))  # the task, not the trigger
            await n.advance(60)
            assert await n.dates() == minutes(1)
            await n.set_flows(failing.replace("[FAILED]", "[KILLED]"))  # a changed trigger
            await n.advance(60)
            assert await n.dates() == minutes(1, 5)
    assert any(e["event"].startswith("schedule stopped") for e in logs)


async def test_a_stopped_trigger_stays_stopped_after_a_restart(tmp_path: Path) -> None:
    failing = ticker(extra="stopAfter: [FAILED]").replace(
        "type: Log, message", "type: Fail, errorMessage"
    )
    first = clock_at()
    async with node(tmp_path, first, failing) as n:
        await n.advance(2 * 60)
    async with node(tmp_path, clock_at(first.now() + 600), failing) as n:
        await n.advance(2 * 60)
        assert await n.dates() == minutes(1)


async def test_a_backfill_fires_from_its_start_then_follows_the_schedule(tmp_path: Path) -> None:
    # A backfill is late on purpose: lateMaximumDelay does not apply to it (as in Kestra).
    flow = ticker(
        extra="""
        lateMaximumDelay: PT1M
        backfill:
          start: "2025-12-31T23:57:00Z"
          labels: {backfill: "true"}
        """
    )
    async with node(tmp_path, clock_at(30), flow) as n:
        await n.advance(60)
        executions = await n.executions()
    assert [scheduled(e) for e in executions] == [
        "2025-12-31T23:57:00Z",
        "2025-12-31T23:58:00Z",
        "2025-12-31T23:59:00Z",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
    ]
    backfilled = [any(label.key == "backfill" for label in e.labels) for e in executions]
    assert backfilled == [True, True, True, True, False]


# -- validation ------------------------------------------------------------------------------


def problems(text: str) -> list[str]:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(text, "flow.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("cron", "extra", "expected"),
    [
        (
            "* * *",
            "",
            "triggers[0].cron: invalid cron expression '* * *': expected 5 fields, found 3",
        ),
        ("0 0 * * * *", "", "expected 5 fields, found 6 (or set withSeconds: true)"),
        (
            "70 * * * *",
            "",
            "triggers[0].cron: invalid cron expression '70 * * * *': a field is out of range",
        ),
        ("0 0 30 2 *", "", "triggers[0].cron: cron expression '0 0 30 2 *' never matches a date"),
        (
            "@daily",
            "timezone: Europe/Pariss",
            "triggers[0].timezone: unknown time zone 'Europe/Pariss'",
        ),
        (
            "@daily",
            "recoverMissedSchedules: SOME",
            "triggers[0].recoverMissedSchedules: expected one of ALL, LAST, NONE, found text 'SOME'",
        ),
        (
            "@daily",
            "lateMaximumDelay: PT0S",
            "triggers[0].lateMaximumDelay: must be a positive duration",
        ),
        (
            "@daily",
            "conditions:\n  - {type: io.kestra.plugin.core.condition.DayWeek, dayOfWeek: MONDY}",
            "triggers[0].conditions[0].dayOfWeek: expected one of MONDAY",
        ),
        (
            "@daily",
            "conditions:\n  - {type: io.kestra.plugin.core.condition.DateTimeBetween}",
            "triggers[0].conditions[0]: needs after, before or both",
        ),
        (
            "@daily",
            "conditions:\n  - {type: io.kestra.plugin.core.condition.Nope}",
            "triggers[0].conditions[0].type: unknown type 'io.kestra.plugin.core.condition.Nope'",
        ),
        (
            "@daily",
            "backfill: {start: '2026-01-02T00:00:00Z', end: '2026-01-01T00:00:00Z'}",
            "triggers[0].backfill: backfill end must not be before its start",
        ),
        (
            "@daily",
            "labels: [{key: a}]",
            "triggers[0].labels: as a list, labels need a key and a value",
        ),
    ],
)
def test_invalid_schedules_are_refused_with_a_clear_message(
    cron: str, extra: str, expected: str
) -> None:
    found = problems(ticker(cron, extra))
    assert any(expected in message for message in found), found
    assert all(message.startswith("flow.yaml:") for message in found)


def test_a_valid_schedule_parses_with_every_property() -> None:
    flow: Flow = parse_flow(
        ticker(
            "0 11 * * 1",
            """
            timezone: Europe/Paris
            recoverMissedSchedules: LAST
            lateMaximumDelay: PT1H
            labels: [{key: a, value: 1}]
            stopAfter: [FAILED]
            scheduleConditions:
              - type: io.kestra.core.models.conditions.types.DayWeekInMonthCondition
                dayOfWeek: MONDAY
                dayInMonth: FIRST
            conditions:
              - {type: io.kestra.plugin.core.condition.ExecutionStatus, in: [SUCCESS]}
            """,
        )
    )
    [trigger] = flow.triggers
    assert trigger.label_map() == {"a": "1"}
    assert getattr(trigger, "recover_missed_schedules") is MissedSchedules.LAST  # noqa: B009
    # Only date conditions count on a schedule (an execution condition is ignored, as Kestra).
    dated = getattr(trigger, "date_conditions")()  # noqa: B009
    assert [type(c).__name__ for c in dated] == ["DayWeekInMonthCondition"]


def test_trigger_ids_are_unique_in_a_flow() -> None:
    text = ticker() + "  - {id: tick, type: Schedule, cron: '@daily'}\n"
    found = problems(text)
    assert any("triggers[1].id: duplicate trigger id 'tick'" in m for m in found), found
