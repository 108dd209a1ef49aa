"""Flow ``concurrency`` limits across a cluster: two executors (two runtimes in this
process) on one PostgreSQL schema share each flow's running slots and its queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from psycopg_pool import AsyncConnectionPool

from actors import VirtualClock
from runtime.cluster import Executor, QueueAttemptRunner
from runtime.cluster import _concurrency as statements
from runtime.engine import Execution, ExecutionHandle, Runtime, State
from runtime.store import PostgresStore
from tests import test_cluster_queue

pg_url = test_cluster_queue.pg_url
"""A fresh schema for the cluster's tables and the store (the fixture of the queue's tests)."""
pool = test_cluster_queue.pool
"""The cluster's connection pool on that schema."""

T = TypeVar("T")

NAMESPACE = "cluster.concurrency"


def limited(behavior: str, nap: str = "PT0.2S") -> str:
    """A flow that lets one execution run at a time; each naps ``nap``."""
    return (
        f"id: limited\nnamespace: {NAMESPACE}\n"
        f"concurrency: {{limit: 1, behavior: {behavior}}}\n"
        f"tasks:\n  - {{id: nap, type: Sleep, duration: {nap}}}\n"
    )


@asynccontextmanager
async def executor_node(
    pool: AsyncConnectionPool, pg_url: str, tmp_path: Path, name: str, **options: Any
) -> AsyncIterator[tuple[Runtime, Executor]]:
    """A runtime with a cluster executor (it runs its attempts itself), on the shared
    PostgreSQL store, as ``ClusterNode.attach`` wires one."""
    store = PostgresStore(pg_url)
    async with (
        Runtime(data_dir=tmp_path, store=store, recover=False) as runtime,
        anyio.create_task_group() as group,
    ):
        executor = Executor(runtime, pool, name, QueueAttemptRunner(pool, name), **options)
        runtime.placement = executor.placement
        store.fence = executor
        await group.start(executor.run)
        yield runtime, executor
        group.cancel_scope.cancel()


async def rows(pool: AsyncConnectionPool, query: str, *args: Any) -> list[tuple[Any, ...]]:
    async with pool.connection() as connection:
        return list(await (await connection.execute(query, args)).fetchall())


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``check`` until it returns something (not None, not empty), for 20 s at most."""
    try:
        with anyio.fail_after(20):
            while True:
                found = await check()
                if found:
                    return found
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def tables_emptied(pool: AsyncConnectionPool) -> None:
    """Slot and queue rows go when their executions end (releases run just after)."""

    async def empty() -> bool:
        slots = await rows(pool, "SELECT execution_id FROM concurrency_slots")
        queued = await rows(pool, "SELECT execution_id FROM concurrency_queue")
        return not slots and not queued

    await eventually(empty, "slots and queue rows released")


def states(execution: Execution) -> list[State]:
    return [h.state for h in execution.state.histories]


def running_interval(execution: Execution) -> tuple[datetime, datetime]:
    """When the execution went RUNNING, and when it ended."""
    start = next(h.date for h in execution.state.histories if h.state is State.RUNNING)
    assert execution.state.end_date is not None
    return start, execution.state.end_date


async def wait_running(handle: ExecutionHandle) -> None:
    with anyio.fail_after(20):
        await handle.wait_for_state(State.RUNNING)


async def test_queued_executions_run_one_at_a_time_across_executors_oldest_first(
    pool: AsyncConnectionPool,
    pg_url: str,
    tmp_path: Path,
) -> None:
    async with (
        executor_node(pool, pg_url, tmp_path, "executor-a") as (a, _),
        executor_node(pool, pg_url, tmp_path, "executor-b") as (b, _),
    ):
        handles = [await (a, b)[n % 2].start(limited("QUEUE")) for n in range(6)]
        with anyio.fail_after(30):
            done = [await handle.result() for handle in handles]
        await tables_emptied(pool)
    assert [e.state.current for e in done] == [State.SUCCESS] * 6
    assert states(done[0])[:2] == [State.CREATED, State.RUNNING]
    for execution in done[1:]:  # each waited, on either executor, for the slot
        assert states(execution)[:3] == [State.CREATED, State.QUEUED, State.RUNNING]
    intervals = [running_interval(e) for e in done]
    by_start = sorted(intervals)
    assert by_start == intervals  # dequeued in creation order
    for (_, ended), (started, _) in pairwise(by_start):
        assert started >= ended  # never two RUNNING at once


@pytest.mark.parametrize(
    ("behavior", "refused"), [("CANCEL", State.CANCELLED), ("FAIL", State.FAILED)]
)
async def test_cancel_and_fail_behaviors_hold_across_executors(
    pool: AsyncConnectionPool,
    pg_url: str,
    tmp_path: Path,
    behavior: str,
    refused: State,
) -> None:
    flow = limited(behavior, nap="PT1S")
    async with (
        executor_node(pool, pg_url, tmp_path, "executor-a") as (a, _),
        executor_node(pool, pg_url, tmp_path, "executor-b") as (b, _),
    ):
        first = await a.start(flow)
        await wait_running(first)
        with anyio.fail_after(10):
            second = await (await b.start(flow)).result()
            first_done = await first.result()
        await tables_emptied(pool)
        with anyio.fail_after(10):  # the slot was given back: the next one runs
            third = await (await b.start(flow)).result()
    assert first_done.state.current is State.SUCCESS
    assert second.state.current is refused
    assert states(second) == [State.CREATED, refused]  # nothing ran
    assert second.task_run_list == []
    assert second.state.end_date is not None
    assert first_done.state.end_date is not None
    assert second.state.end_date < first_done.state.end_date
    assert third.state.current is State.SUCCESS
    assert states(third)[:2] == [State.CREATED, State.RUNNING]


async def test_a_grant_to_an_execution_whose_executor_died_is_honoured_by_its_next_owner(
    pool: AsyncConnectionPool,
    pg_url: str,
    tmp_path: Path,
) -> None:
    flow = limited("QUEUE", nap="PT0.5S")
    async with executor_node(pool, pg_url, tmp_path, "executor-a") as (a, _):
        first = await a.start(flow)
        await wait_running(first)
        with anyio.CancelScope() as crash:
            async with executor_node(pool, pg_url, tmp_path, "executor-b") as (b, _):
                waiting = await b.start(flow)
                assert waiting.execution.state.current is State.QUEUED
                await b.store.flush()
                crash.cancel()  # executor-b dies: no stop, no hand-over
        second_id = waiting.id
        with anyio.fail_after(10):
            first_done = await first.result()

        async def granted() -> list[tuple[Any, ...]]:
            return await rows(
                pool, "SELECT 1 FROM concurrency_slots WHERE execution_id = %s", second_id
            )

        await eventually(granted, "the slot given to the queued execution")
        stored = await a.store.get_execution(second_id)
        assert stored is not None
        assert stored.state.current is State.QUEUED  # granted, but no one runs it yet
        async with pool.connection() as connection:  # executor-b's leases run out
            await connection.execute(
                "UPDATE execution_leases SET expires_at = now() - interval '1 second' "
                "WHERE owner = 'executor-b'"
            )

        async def adopted() -> bool:
            return second_id in a._channels

        await eventually(adopted, "executor-a takes the queued execution over")
        with anyio.fail_after(10):
            second = await a.handle(second_id).result()
        await tables_emptied(pool)
    assert second.state.current is State.SUCCESS
    assert states(second)[:3] == [State.CREATED, State.QUEUED, State.RUNNING]
    assert running_interval(second)[0] >= running_interval(first_done)[1]


@pytest.mark.parametrize("leak", ["ended", "never-stored"])
async def test_a_slot_left_by_an_ended_execution_is_reconciled(
    pool: AsyncConnectionPool,
    pg_url: str,
    tmp_path: Path,
    leak: str,
) -> None:
    flow = limited("QUEUE", nap="PT0.1S")
    async with executor_node(
        pool, pg_url, tmp_path, "executor-a", lease_seconds=2.0, reconcile_every=0.2
    ) as (a, executor):
        leaked = "no-such-execution"
        if leak == "ended":
            ended = await a.run(flow)
            assert ended.state.current is State.SUCCESS
            await tables_emptied(pool)
            leaked = ended.id
        # as if an executor died between an end and its release: the slot stayed taken
        async with pool.connection() as connection:
            await connection.execute(
                "INSERT INTO concurrency_slots (execution_id, flow, acquired_at) "
                "VALUES (%s, %s, now() - interval '1 hour')",
                (leaked, f"{NAMESPACE}.limited"),
            )
        blocked = await a.start(flow)
        assert blocked.execution.state.current is State.QUEUED
        await wait_running(blocked)  # the reconciliation gave it the leaked slot
        # a running execution's slot is not taken for a leak, however old
        assert await executor.concurrency.reconcile(a.store, older_than=0.0) == []
        with anyio.fail_after(10):
            done = await blocked.result()
        await tables_emptied(pool)
    assert done.state.current is State.SUCCESS
    assert states(done)[:3] == [State.CREATED, State.QUEUED, State.RUNNING]


async def test_killing_a_queued_execution_frees_its_place_in_the_queue(
    pool: AsyncConnectionPool,
    pg_url: str,
    tmp_path: Path,
) -> None:
    flow = limited("QUEUE", nap="PT2S")
    async with (
        executor_node(pool, pg_url, tmp_path, "executor-a") as (a, _),
        executor_node(pool, pg_url, tmp_path, "executor-b") as (b, _),
    ):
        first = await a.start(flow)
        await wait_running(first)
        second = await b.start(flow)
        third = await a.start(flow)
        assert second.execution.state.current is State.QUEUED
        assert third.execution.state.current is State.QUEUED
        queue = "SELECT execution_id FROM concurrency_queue ORDER BY id"
        assert await rows(pool, queue) == [(second.id,), (third.id,)]
        await a.kill(second.id)  # from the other executor: the command travels to b
        with anyio.fail_after(10):
            killed = await second.result()

        async def left_the_queue() -> bool:  # released once its end is durable
            return await rows(pool, queue) == [(third.id,)]

        await eventually(left_the_queue, "the killed execution leaves the queue")
        assert first.execution.state.current is State.RUNNING  # not a grant: the kill did it
        slots = await rows(pool, "SELECT execution_id FROM concurrency_slots")
        assert slots == [(first.id,)]
        with anyio.fail_after(10):
            first_done = await first.result()
            third_done = await third.result()
        await tables_emptied(pool)
    assert first_done.state.current is State.SUCCESS
    assert killed.state.current is State.KILLED
    assert states(killed) == [State.CREATED, State.QUEUED, State.KILLED]  # it never ran
    assert killed.task_run_list == []
    assert third_done.state.current is State.SUCCESS
    assert running_interval(third_done)[0] >= running_interval(first_done)[1]


async def test_a_restarted_execution_takes_its_slot_again(
    pool: AsyncConnectionPool,
    pg_url: str,
    tmp_path: Path,
) -> None:
    flow = (
        f"id: limited\nnamespace: {NAMESPACE}\nconcurrency: {{limit: 1, behavior: QUEUE}}\n"
        "tasks:\n  - {id: nap, type: Sleep, duration: PT1M, timeout: PT1S}\n"
    )
    async with (
        executor_node(pool, pg_url, tmp_path, "executor-a") as (a, _),
        executor_node(pool, pg_url, tmp_path, "executor-b") as (b, _),
    ):
        with anyio.fail_after(10):
            failed = await a.run(flow)
        assert failed.state.current is State.FAILED
        await tables_emptied(pool)
        await b.restart(failed.id)  # a command: an executor takes the execution on
        waiting = await b.start(flow)
        assert waiting.execution.state.current is State.QUEUED
        with anyio.fail_after(10):
            restarted = await (await b.lookup(failed.id)).result()
            after = await waiting.result()
        await tables_emptied(pool)
    assert restarted.state.current is State.FAILED
    assert State.RESTARTED in states(restarted)
    assert states(after)[:3] == [State.CREATED, State.QUEUED, State.RUNNING]
    assert restarted.state.end_date is not None
    assert running_interval(after)[0] >= restarted.state.end_date


async def test_killing_a_queued_execution_in_one_runtime_frees_its_place() -> None:
    """Without a gate too (in memory): a queued execution killed ends KILLED at once, and
    the next one in the queue gets the slot."""
    flow = limited("QUEUE", nap="PT10S")
    async with Runtime(clock=VirtualClock()) as runtime:
        first = await runtime.start(flow)
        second = await runtime.start(flow)
        third = await runtime.start(flow)
        await second.kill()
        killed = await second.result()
        first_done = await first.result()
        third_done = await third.result()
    assert states(killed) == [State.CREATED, State.QUEUED, State.KILLED]
    assert first_done.state.current is State.SUCCESS
    assert third_done.state.current is State.SUCCESS
    assert states(third_done)[:3] == [State.CREATED, State.QUEUED, State.RUNNING]


async def test_admissions_at_the_same_time_never_exceed_the_limit(
    pool: AsyncConnectionPool,
) -> None:
    """Two executors' gates admit 20 executions at once (8 connections in parallel): the
    flow's row lock lets exactly ``limit`` run; each release hands one slot on, oldest
    first."""
    from runtime.cluster import ClusterConcurrency
    from runtime.parsing import parse_flow

    flow = parse_flow(limited("QUEUE").replace("limit: 1", "limit: 2"))
    gates = [ClusterConcurrency(pool), ClusterConcurrency(pool)]
    admitted: dict[str, bool] = {}

    async def admit(n: int) -> None:
        admitted[f"e{n}"] = await gates[n % 2].admit(flow, f"e{n}")

    async with anyio.create_task_group() as group:
        for n in range(20):
            group.start_soon(admit, n)
    running = sorted(e for e, ok in admitted.items() if ok)
    assert len(running) == 2
    queued = [str(r[0]) for r in await rows(pool, "SELECT execution_id FROM concurrency_queue")]
    assert sorted(queued + running) == sorted(admitted)
    oldest = [
        str(r[0])
        for r in await rows(pool, "SELECT execution_id FROM concurrency_queue ORDER BY id")
    ]
    await gates[0].release(running[0])
    slots = {str(r[0]) for r in await rows(pool, "SELECT execution_id FROM concurrency_slots")}
    assert slots == {running[1], oldest[0]}
    assert oldest[0] in await gates[int(oldest[0][1:]) % 2].granted()
    await gates[1].release(oldest[5])  # one leaves the queue: no slot changes hands
    assert len(await rows(pool, "SELECT 1 FROM concurrency_slots")) == 2


async def test_every_concurrency_statement_can_use_an_index(
    pool: AsyncConnectionPool,
) -> None:
    queries: list[tuple[str, tuple[Any, ...]]] = [
        (statements.LOCK_FLOW, ("f", 1)),
        (statements.LOCK_KNOWN_FLOW, ("f",)),
        (statements.FLOW_OF, ("e", "e")),
        (statements.HAS_SLOT, ("e",)),
        (statements.RUNNING, ("f",)),
        (statements.TAKE_SLOT, ("e", "f")),
        (statements.FREE_SLOT, ("e",)),
        (statements.ENQUEUE, ("e", "f")),
        (statements.UNQUEUE, ("e",)),
        (statements.GRANT_OLDEST, ("f", 2)),
        (statements.GRANTED, (["e", "g"],)),
        (statements.STALE, (10.0, 100, 10.0, 100)),
    ]
    async with pool.connection() as connection, connection.transaction():
        await connection.execute("SET LOCAL enable_seqscan = off")  # a Seq Scan: no index fits
        for query, args in queries:
            cursor = await connection.execute(f"EXPLAIN {query}", args, prepare=False)
            plan = "\n".join(str(row[0]) for row in await cursor.fetchall())
            assert "Seq Scan" not in plan, f"{query}\n{plan}"
