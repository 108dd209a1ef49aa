"""Flow triggers: a flow starts when executions of others end; conditions, preconditions,
catch-up after a crash, no double start."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from actors import VirtualClock
from runtime.engine import Execution, ExecutionHandle, Runtime
from runtime.errors import FlowValidationError
from runtime.parsing import parse_flow
from runtime.scheduling import FLOW_TRIGGERS_NAMESPACE, FlowTriggers, flow_trigger_execution_id
from runtime.store import ExecutionQuery, SqliteStore

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
NEW = "io.kestra.plugin.core.condition."
OLD = "io.kestra.core.models.conditions.types."


def upstream(flow_id: str = "upstream", namespace: str = "company.team") -> str:
    """A flow that returns ``made`` as an output, and fails when asked to."""
    return f"""
id: {flow_id}
namespace: {namespace}
labels: {{env: prod}}
inputs:
  - {{id: fail, type: BOOLEAN, defaults: false}}
tasks:
  - {{id: make, type: Return, format: "made by {{{{ flow.id }}}}"}}
  - {{id: check, type: Fail, condition: "{{{{ inputs.fail }}}}"}}
outputs:
  - {{id: made, type: STRING, value: "{{{{ outputs.make.value }}}}"}}
"""


def downstream(trigger: dict[str, Any], flow_id: str = "downstream") -> str:
    """A flow started by ``trigger`` (a Flow trigger's properties, id ``on-end``)."""
    spec = {"id": "on-end", "type": "io.kestra.plugin.core.trigger.Flow", **trigger}
    return f"""
id: {flow_id}
namespace: company.team
inputs:
  - {{id: got, type: STRING, defaults: none}}
tasks:
  - {{id: log, type: Log, message: "{{{{ inputs.got }}}}"}}
triggers:
  - {json.dumps(spec)}
"""


class CountingRuntime(Runtime):
    """A runtime that counts the starts of each execution id (a double start shows)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.starts: Counter[str | None] = Counter()

    async def start(self, flow: Any, inputs: Any = None, **options: Any) -> ExecutionHandle:
        self.starts[options.get("execution_id")] += 1
        return await super().start(flow, inputs, **options)


class Node:
    """One process: a runtime on the test's data folder, with FlowTriggers running."""

    def __init__(self, runtime: CountingRuntime, triggers: FlowTriggers) -> None:
        self.runtime = runtime
        self.triggers = triggers

    async def settle(self) -> None:
        """Wait until every execution has ended and every end has been processed."""
        while True:
            await self.runtime.wait_idle()
            await self.triggers.wait_idle()
            if all(e.state.current.terminal for e in self.runtime.executions()):
                return

    async def run(self, flow_id: str = "upstream", **inputs: Any) -> Execution:
        handle = await self.runtime.start(
            self.runtime.flows.get("company.team", flow_id) or "", inputs
        )
        execution = await handle.result()
        await self.settle()
        return execution

    async def started(self, flow_id: str = "downstream") -> list[Execution]:
        """The executions of ``flow_id`` in the store, oldest first."""
        await self.settle()
        page = await self.runtime.store.search(ExecutionQuery(flow_id=flow_id, size=1000))
        return sorted(page.items, key=lambda e: (e.state.start_date, e.id))


@asynccontextmanager
async def node(
    path: Path,
    clock: VirtualClock,
    *flows: str,
    store: SqliteStore | None = None,
    following: bool = True,
) -> AsyncIterator[Node]:
    """A runtime with ``flows``, and FlowTriggers running when ``following``."""
    store = store or SqliteStore(path / "t.db")
    async with CountingRuntime(data_dir=path, clock=clock, store=store) as runtime:
        for text in flows:
            await runtime.register_flow(parse_flow(text))
        triggers = FlowTriggers(runtime)
        async with anyio.create_task_group() as group:
            if following:
                await group.start(triggers.run)
            n = Node(runtime, triggers)
            yield n
            await n.settle()
            group.cancel_scope.cancel()


def clock_at(seconds: float = 0.0) -> VirtualClock:
    return VirtualClock(start=seconds, epoch=EPOCH, autojump=False)


# -- starting ------------------------------------------------------------------------------


async def test_a_flow_starts_when_another_ends_with_kestra_trigger_variables(
    tmp_path: Path,
) -> None:
    trigger = {"inputs": {"got": "{{ trigger.outputs.made }}"}, "labels": {"from": "trigger"}}
    async with node(tmp_path, clock_at(), upstream(), downstream(trigger)) as n:
        ended = await n.run()
        [started] = await n.started()
    assert started.trigger == {
        "id": "on-end",
        "type": "io.kestra.plugin.core.trigger.Flow",
        "variables": {
            "executionId": ended.id,
            "namespace": "company.team",
            "flowId": "upstream",
            "flowRevision": 1,
            "state": "SUCCESS",
        },
    }
    assert started.inputs == {"got": "made by upstream"}
    assert {label.key: label.value for label in started.labels}["from"] == "trigger"
    assert ended.state.end_date is not None
    assert started.id == flow_trigger_execution_id(
        ended.id, ended.state.end_date, "company.team", "downstream", "on-end"
    )
    assert started.state.current.value == "SUCCESS"


async def test_any_final_state_triggers_by_default_and_states_filters(tmp_path: Path) -> None:
    of_upstream = [
        {"type": NEW + "ExecutionFlow", "namespace": "company.team", "flowId": "upstream"}
    ]
    flows = (
        upstream(),
        downstream({"conditions": of_upstream}, "on-any"),
        downstream({"conditions": of_upstream, "states": ["FAILED"]}, "on-failure"),
    )
    async with node(tmp_path, clock_at(), *flows) as n:
        await n.run()
        assert (len(await n.started("on-any")), len(await n.started("on-failure"))) == (1, 0)
        failed = await n.run(fail=True)
        assert failed.state.current.value == "FAILED"
        assert (len(await n.started("on-any")), len(await n.started("on-failure"))) == (2, 1)


async def test_without_conditions_every_other_flow_triggers(tmp_path: Path) -> None:
    flows = (upstream(), upstream("other"), downstream({}))
    async with node(tmp_path, clock_at(), *flows) as n:
        await n.run()
        await n.run("other")
        assert len(await n.started()) == 2


async def test_inputs_without_outputs_to_render_start_nothing_and_say_why(tmp_path: Path) -> None:
    trigger = {"inputs": {"got": "{{ trigger.outputs.missing }}"}}
    with capture_logs() as logs:
        async with node(tmp_path, clock_at(), upstream(), downstream(trigger)) as n:
            await n.run()
            assert await n.started() == []
    [warning] = [e for e in logs if e["event"].startswith("the trigger's inputs cannot")]
    assert warning["flow_id"] == "downstream"


async def test_a_flow_never_triggers_itself(tmp_path: Path) -> None:
    itself = downstream({}, "echo")
    async with node(tmp_path, clock_at(), upstream(), itself) as n:
        await n.run("echo")
        assert len(await n.started("echo")) == 1  # its own end did not start it again
        await n.run()
        assert len(await n.started("echo")) == 2  # another flow's end does


async def test_disabled_triggers_and_flows_do_not_start(tmp_path: Path) -> None:
    disabled_trigger = downstream({"disabled": True}, "off")
    disabled_flow = downstream({}, "off-flow").replace("namespace:", "disabled: true\nnamespace:")
    async with node(tmp_path, clock_at(), upstream(), disabled_trigger, disabled_flow) as n:
        await n.run()
        assert await n.started("off") == []
        assert await n.started("off-flow") == []


# -- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "fires"),
    [
        ([{"type": NEW + "ExecutionStatus", "in": ["SUCCESS"]}], True),
        ([{"type": NEW + "ExecutionStatus", "in": ["FAILED", "WARNING"]}], False),
        ([{"type": OLD + "ExecutionStatusCondition", "notIn": ["SUCCESS"]}], False),
        ([{"type": NEW + "ExecutionStatus", "in": ["SUCCESS"], "notIn": ["FAILED"]}], True),
        ([{"type": NEW + "ExecutionNamespace", "namespace": "company.team"}], True),
        ([{"type": NEW + "ExecutionNamespace", "namespace": "company"}], False),
        ([{"type": NEW + "ExecutionNamespace", "namespace": "company", "prefix": True}], True),
        (
            [{"type": NEW + "ExecutionNamespace", "namespace": "comp", "comparison": "PREFIX"}],
            True,
        ),
        (
            [{"type": NEW + "ExecutionNamespace", "namespace": ".team", "comparison": "SUFFIX"}],
            True,
        ),
        (
            [
                {
                    "type": OLD + "ExecutionNamespaceCondition",
                    "namespace": "x",
                    "comparison": "SUFFIX",
                }
            ],
            False,
        ),
        (
            [{"type": NEW + "ExecutionFlow", "namespace": "company.team", "flowId": "upstream"}],
            True,
        ),
        ([{"type": NEW + "ExecutionFlow", "namespace": "company.team", "flowId": "other"}], False),
        ([{"type": NEW + "ExecutionLabels", "labels": {"env": "prod"}}], True),
        ([{"type": NEW + "ExecutionLabels", "labels": [{"key": "env", "value": "dev"}]}], False),
        ([{"type": OLD + "ExecutionLabelsCondition", "labels": {"env": "prod", "x": "y"}}], False),
        (
            [{"type": NEW + "ExecutionOutputs", "expression": "{{ trigger.outputs.made != '' }}"}],
            True,
        ),
        (
            [
                {
                    "type": NEW + "Not",
                    "conditions": [{"type": NEW + "ExecutionStatus", "in": ["SUCCESS"]}],
                }
            ],
            False,
        ),
        (
            [
                {
                    "type": NEW + "Or",
                    "conditions": [
                        {"type": NEW + "ExecutionFlow", "namespace": "a", "flowId": "b"},
                        {"type": NEW + "ExecutionLabels", "labels": {"env": "prod"}},
                    ],
                }
            ],
            True,
        ),
        # Every condition must hold.
        (
            [
                {"type": NEW + "ExecutionStatus", "in": ["SUCCESS"]},
                {"type": NEW + "ExecutionNamespace", "namespace": "elsewhere"},
            ],
            False,
        ),
    ],
)
async def test_conditions_on_the_ending_execution(
    tmp_path: Path, conditions: list[dict[str, Any]], fires: bool
) -> None:
    async with node(tmp_path, clock_at(), upstream(), downstream({"conditions": conditions})) as n:
        await n.run()
        assert len(await n.started()) == (1 if fires else 0)


async def test_a_condition_that_cannot_be_evaluated_does_not_fire_and_is_logged(
    tmp_path: Path,
) -> None:
    conditions = [{"type": NEW + "Expression", "expression": "{{ nope.nothing }}"}]
    with capture_logs() as logs:
        async with node(
            tmp_path, clock_at(), upstream(), downstream({"conditions": conditions})
        ) as n:
            await n.run()
            assert await n.started() == []
    assert any(e["event"].startswith("a condition cannot be evaluated") for e in logs)


# -- preconditions -------------------------------------------------------------------------


def both(**window: Any) -> str:
    """A flow started once ``first`` and ``second`` have both succeeded."""
    preconditions: dict[str, Any] = {
        "id": "both",
        "flows": [
            {"namespace": "company.team", "flowId": "first", "states": ["SUCCESS"]},
            {"namespace": "company.team", "flowId": "second", "states": ["SUCCESS"]},
        ],
    }
    preconditions.update(window)
    return downstream({"preconditions": preconditions})


BOTH_FLOWS = (upstream("first"), upstream("second"))


async def test_preconditions_wait_for_every_flow_then_reset(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), *BOTH_FLOWS, both()) as n:
        await n.run("first")
        assert await n.started() == []
        await n.run("first", fail=True)  # a FAILED first does not count
        completing = await n.run("second")
        assert len(await n.started()) == 1
        await n.run("second")  # reset on success: both are needed again
        assert len(await n.started()) == 1
        last_first = await n.run("first")
        started = await n.started()
        by = {e.trigger["variables"]["executionId"] for e in started if e.trigger is not None}
        assert by == {completing.id, last_first.id}  # the end that completed each time


async def test_without_reset_each_further_end_starts_again(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), *BOTH_FLOWS, both(resetOnSuccess=False)) as n:
        await n.run("first")
        await n.run("second")
        await n.run("second")
        assert len(await n.started()) == 2


async def test_preconditions_must_all_be_met_within_the_window(tmp_path: Path) -> None:
    clock = clock_at(23 * 3600)  # 23:00 UTC
    async with node(tmp_path, clock, *BOTH_FLOWS, both()) as n:
        await n.run("first")
        await clock.advance(2 * 3600)  # the next day: a new window
        await n.run("second")
        assert await n.started() == []
        await n.run("first")
        assert len(await n.started()) == 1


async def test_a_daily_deadline_counts_only_ends_before_it(tmp_path: Path) -> None:
    window = {"timeWindow": {"type": "DAILY_TIME_DEADLINE", "deadline": "09:00:00"}}
    clock = clock_at(8 * 3600)
    async with node(tmp_path, clock, *BOTH_FLOWS, both(**window)) as n:
        await n.run("first")
        await clock.advance(2 * 3600)  # 10:00: past the deadline
        await n.run("second")
        assert await n.started() == []


async def test_a_sliding_window_looks_back_from_each_end(tmp_path: Path) -> None:
    window = {"timeWindow": {"type": "SLIDING_WINDOW", "window": "PT1H"}}
    clock = clock_at(10 * 3600)
    async with node(tmp_path, clock, *BOTH_FLOWS, both(**window)) as n:
        await n.run("first")
        await clock.advance(3600 + 1)
        await n.run("second")  # first is more than an hour old
        assert await n.started() == []
        await clock.advance(1800)
        await n.run("first")  # second is 30 minutes old
        assert len(await n.started()) == 1


async def test_where_filters_are_preconditions_too(tmp_path: Path) -> None:
    preconditions = {
        "id": "failures",
        "where": [
            {
                "id": "team-failure",
                "filters": [
                    {"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company"},
                    {"field": "STATE", "type": "IN", "values": ["FAILED"]},
                ],
            }
        ],
    }
    async with node(
        tmp_path, clock_at(), upstream(), downstream({"preconditions": preconditions})
    ) as n:
        await n.run()
        assert await n.started() == []
        await n.run(fail=True)
        assert len(await n.started()) == 1


async def test_the_older_multiple_condition_works_like_preconditions(tmp_path: Path) -> None:
    conditions = [
        {
            "type": OLD + "MultipleCondition",
            "id": "both",
            "window": "PT12H",
            "conditions": {
                "a": {
                    "type": NEW + "ExecutionFlow",
                    "namespace": "company.team",
                    "flowId": "first",
                },
                "b": {
                    "type": NEW + "ExecutionFlow",
                    "namespace": "company.team",
                    "flowId": "second",
                },
            },
        }
    ]
    async with node(tmp_path, clock_at(), *BOTH_FLOWS, downstream({"conditions": conditions})) as n:
        await n.run("second")
        assert await n.started() == []
        await n.run("first")
        assert len(await n.started()) == 1


async def test_replaying_the_end_that_completed_a_window_changes_nothing(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), *BOTH_FLOWS, both()) as n:
        await n.run("first")
        completing = await n.run("second")
        n.triggers._recent.clear()
        await n.triggers._process(completing)  # as a catch-up after a crash would
        await n.run("first")  # the window was reset: first alone is not enough
        assert len(await n.started()) == 1


async def test_replaying_an_end_consumed_by_a_reset_changes_nothing(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), *BOTH_FLOWS, both()) as n:
        contributing = await n.run("first")
        await n.run("second")  # completes, resets
        n.triggers._recent.clear()
        await n.triggers._process(contributing)  # a restart's catch-up reads it again
        await n.run("second")  # first's part was consumed: second alone is not enough
        assert len(await n.started()) == 1


async def test_without_reset_only_an_end_that_meets_a_condition_starts_again(
    tmp_path: Path,
) -> None:
    flows = (*BOTH_FLOWS, upstream("unrelated"), both(resetOnSuccess=False))
    async with node(tmp_path, clock_at(), *flows) as n:
        await n.run("first")
        await n.run("second")
        await n.run("unrelated")
        assert len(await n.started()) == 1


async def test_preconditions_are_kept_across_a_restart(tmp_path: Path) -> None:
    first = clock_at()
    async with node(tmp_path, first, *BOTH_FLOWS, both()) as n:
        await n.run("first")
    async with node(tmp_path, clock_at(first.now() + 60), *BOTH_FLOWS, both()) as n:
        await n.run("second")
        assert len(await n.started()) == 1


# -- durability ----------------------------------------------------------------------------


async def test_ends_missed_while_stopped_are_caught_up_once(tmp_path: Path) -> None:
    flows = (upstream(), downstream({}))
    clock = clock_at()
    async with node(tmp_path, clock, *flows):
        pass  # the first run sets the checkpoint
    await clock.advance(60)
    async with node(tmp_path, clock, *flows, following=False) as n:
        ended = await n.run()  # nobody follows ends: as if the process died before
        assert await n.started() == []
    await clock.advance(60)
    async with node(tmp_path, clock, *flows) as n:
        [started] = await n.started()
        assert started.trigger is not None
        assert started.trigger["variables"]["executionId"] == ended.id
    async with node(tmp_path, clock, *flows) as n:  # caught up again: nothing new
        assert len(await n.started()) == 1
        assert n.runtime.starts[started.id] == 0


class CheckpointCrashError(Exception):
    """The process died before its checkpoint was saved."""


class CrashingStore(SqliteStore):
    """A store whose process dies when the flow triggers' checkpoint is saved (once armed)."""

    armed = False

    async def kv_put(self, namespace: str, key: str, value: Any, expires: datetime | None) -> None:
        if self.armed and namespace == FLOW_TRIGGERS_NAMESPACE and key == "checkpoint":
            raise CheckpointCrashError
        await super().kv_put(namespace, key, value, expires)


async def test_a_crash_after_starting_and_before_the_checkpoint_does_not_start_twice(
    tmp_path: Path,
) -> None:
    flows = (upstream(), downstream({}))
    clock = clock_at()
    store = CrashingStore(tmp_path / "t.db")
    with pytest.RaisesGroup(CheckpointCrashError, flatten_subgroups=True):
        async with node(tmp_path, clock, *flows, store=store) as n:
            store.armed = True
            await n.run()
    async with node(tmp_path, clock_at(clock.now() + 10), *flows) as n:
        [started] = await n.started()
        assert n.runtime.starts[started.id] == 0  # caught up, found started: not again
        await n.run()
        assert len(await n.started()) == 2


async def test_an_end_seen_twice_starts_once(tmp_path: Path) -> None:
    async with node(tmp_path, clock_at(), upstream(), downstream({})) as n:
        ended = await n.run()
        await n.triggers._process(ended)  # as a catch-up would, after the live end
        n.triggers._recent.clear()  # even once forgotten in memory
        await n.triggers._process(ended)
        [started] = await n.started()
        assert n.runtime.starts[started.id] == 1


# -- a cluster: ends on other executors, read from the store ---------------------------------


async def test_ends_on_other_executors_are_followed_from_the_store(tmp_path: Path) -> None:
    """In a cluster executions end on every executor; the one node running the Flow
    triggers reads the ends from the store. Preconditions met by ends on two executors
    start the flow once; a node that takes the role over later starts nothing twice."""
    db = tmp_path / "shared.db"
    flows = [*BOTH_FLOWS, both()]

    @asynccontextmanager
    async def executor(name: str) -> AsyncIterator[Runtime]:
        async with Runtime(data_dir=tmp_path / name, store=SqliteStore(db)) as runtime:
            for text in flows:
                await runtime.register_flow(parse_flow(text))
            yield runtime

    async def downstream_runs(runtime: Runtime) -> list[Execution]:
        page = await runtime.store.search(ExecutionQuery(flow_id="downstream"))
        return page.items

    async def following(runtime: CountingRuntime, until: int) -> list[Execution]:
        triggers = FlowTriggers(runtime, poll_interval=0.02)
        async with anyio.create_task_group() as group:
            await group.start(triggers.run)
            with anyio.fail_after(10):
                while len(found := await downstream_runs(runtime)) < until:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            await anyio.sleep(0.2)  # several more reads of the same ends
            group.cancel_scope.cancel()
        await runtime.wait_idle()
        return found

    async with executor("a") as a, executor("b") as b:
        async with CountingRuntime(data_dir=tmp_path / "lead", store=SqliteStore(db)) as lead:
            for text in flows:
                await lead.register_flow(parse_flow(text))
            first = await (await a.start(lead.flows.get("company.team", "first") or "")).result()
            second = await (await b.start(lead.flows.get("company.team", "second") or "")).result()
            [started] = await following(lead, until=1)
            assert started.trigger is not None
            assert started.trigger["variables"]["executionId"] in {first.id, second.id}
            assert sum(lead.starts.values()) == 1
        # the role moves to another node: it reads the same ends again, starts nothing
        async with CountingRuntime(data_dir=tmp_path / "next", store=SqliteStore(db)) as nxt:
            for text in flows:
                await nxt.register_flow(parse_flow(text))
            await (await a.start(nxt.flows.get("company.team", "first") or "")).result()
            await (await b.start(nxt.flows.get("company.team", "second") or "")).result()
            runs = await following(nxt, until=2)
            assert len(runs) == 2  # the second pair of ends: one more start, no repeat
            assert sum(nxt.starts.values()) == 1


async def test_an_end_stored_late_is_still_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following the store reads on from the last end it read, and now and then the whole
    lag window again: an end committed after a later one (a slow executor) is not lost."""
    from runtime.scheduling import _flow_triggers
    from runtime.store import MemoryStore

    monkeypatch.setattr(_flow_triggers, "_LAG_READ_EVERY", 0.3)
    db = tmp_path / "shared.db"
    flows = [upstream(), downstream({"inputs": {"got": "{{ trigger.executionId }}"}})]
    async with Runtime(data_dir=tmp_path / "slow", store=MemoryStore()) as slow:
        early = await slow.run(upstream())  # ends first; its events reach the store last
        late_events = slow.events_of(early.id)
    async with CountingRuntime(data_dir=tmp_path / "lead", store=SqliteStore(db)) as lead:
        for text in flows:
            await lead.register_flow(parse_flow(text))
        triggers = FlowTriggers(lead, poll_interval=0.02)

        async def started() -> set[str]:
            page = await lead.store.search(ExecutionQuery(flow_id="downstream"))
            return {e.trigger["variables"]["executionId"] for e in page.items if e.trigger}

        async with anyio.create_task_group() as group:
            await group.start(triggers.run)
            later = await lead.run(upstream())
            with anyio.fail_after(10):
                while await started() != {later.id}:  # noqa: ASYNC110 - a test probe
                    await anyio.sleep(0.02)
            for event in late_events:  # the slow executor's commit lands now
                lead.store.append(event)
            await lead.store.flush()
            with anyio.fail_after(10):
                while await started() != {later.id, early.id}:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            group.cancel_scope.cancel()
    assert early.state.end_date is not None
    assert later.state.end_date is not None
    assert early.state.end_date < later.state.end_date
    assert sorted(n for i, n in lead.starts.items() if i is not None) == [1, 1]  # once each


async def test_without_flow_triggers_ends_are_not_read_back(tmp_path: Path) -> None:
    """Following ends from the store costs an index read per page of ends, not a document
    per end, while no flow has a Flow trigger (a cluster that uses none pays nothing)."""
    db = tmp_path / "shared.db"
    async with Runtime(data_dir=tmp_path / "a", store=SqliteStore(db)) as elsewhere:
        for _ in range(3):
            await elsewhere.run(upstream())

    class Reading(CountingRuntime):
        reads = 0

        async def get_execution(self, execution_id: str) -> Execution | None:
            Reading.reads += 1
            return await super().get_execution(execution_id)

    async with Reading(data_dir=tmp_path / "lead", store=SqliteStore(db)) as lead:
        triggers = FlowTriggers(lead, poll_interval=0.02, catch_up_margin=timedelta(days=1))
        await lead.store.kv_put(  # a checkpoint before the three ends: they are caught up on
            FLOW_TRIGGERS_NAMESPACE, "checkpoint", {"endedAfter": "2000-01-01T00:00:00Z"}, None
        )
        async with anyio.create_task_group() as group:
            await group.start(triggers.run)
            await anyio.sleep(0.1)
            assert Reading.reads == 0
            await lead.register_flow(parse_flow(upstream("other")))
            await lead.register_flow(parse_flow(downstream({})))
            await lead.run(upstream("other"))
            with anyio.fail_after(10):
                while not (await lead.store.search(ExecutionQuery(flow_id="downstream"))).items:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            group.cancel_scope.cancel()
    assert Reading.reads >= 1  # with a trigger, the end that came after it was read


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (
            {"states": ["RUNNING"]},
            "triggers[0].states: RUNNING is not a final state: Flow triggers are evaluated when an execution ends",
        ),
        ({"states": ["DONE"]}, "triggers[0].states[0]: expected one of CREATED"),
        (
            {"preconditions": {"id": "p"}},
            "triggers[0].preconditions: preconditions need flows or where",
        ),
        (
            {"preconditions": {"id": "p", "flows": [{"flowId": "x"}]}},
            "triggers[0].preconditions.flows[0]: missing required property 'namespace'",
        ),
        (
            {
                "preconditions": {
                    "id": "p",
                    "flows": [{"namespace": "a"}],
                    "timeWindow": {"type": "DAILY_TIME_DEADLINE", "window": "PT1H"},
                }
            },
            "triggers[0].preconditions.timeWindow: a time window of type DAILY_TIME_DEADLINE cannot have window",
        ),
        (
            {"conditions": [{"type": NEW + "ExecutionStatus", "in": ["SUCESS"]}]},
            "did you mean 'SUCCESS'?",
        ),
        (
            {
                "conditions": [
                    {"type": NEW + "ExecutionNamespace", "namespace": "a", "comparison": "LIKE"}
                ]
            },
            "triggers[0].conditions[0].comparison: expected one of EQUALS, PREFIX, SUFFIX",
        ),
    ],
)
def test_invalid_flow_triggers_are_refused_with_a_clear_message(
    trigger: dict[str, Any], expected: str
) -> None:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(downstream(trigger), "flow.yaml")
    found = [str(p) for p in caught.value.problems]
    assert any(expected in message for message in found), found
