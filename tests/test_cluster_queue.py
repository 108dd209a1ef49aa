"""The task queue on real PostgreSQL: an executor's runtime hands attempts to workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from psycopg_pool import AsyncConnectionPool

from runtime.cluster._db import open_pool
from runtime.cluster._queue import TASKS_CHANNEL, QueueAttemptRunner, sweep_expired
from runtime.cluster._worker import Worker
from runtime.engine import ExecutionHandle, Runtime, State
from runtime.engine._services import AttemptRequest
from runtime.store import SqliteStore


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """A store in a schema of its own (dropped after the test)."""
    return postgres_url


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[AsyncConnectionPool]:
    opened = await open_pool(pg_url)
    try:
        yield opened
    finally:
        await opened.close()


FLOW = """
id: remote
namespace: cluster.tests
inputs:
  - {id: n, type: INT, defaults: 2}
tasks:
  - {id: first, type: Return, format: "{{ inputs.n * 10 }}"}
  - id: each
    type: ForEach
    values: [a, b, c]
    concurrencyLimit: 0
    tasks:
      - {id: shout, type: Log, message: "{{ taskrun.value }} {{ outputs.first.value }} {{ execution.startDate | date('yyyy') }}"}
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: [out.txt]
    commands: ["echo {{ outputs.first.value }} > out.txt", "echo '::{\\"outputs\\":{\\"x\\":1},\\"metrics\\":[{\\"name\\":\\"n\\",\\"type\\":\\"counter\\",\\"value\\":3}]}::'"]
  - id: flaky
    type: Log
    message: "{{ taskrun.attemptsCount > 0 ? 'ok' : nope }}"
    retry: {type: constant, interval: PT0.01S, maxAttempt: 2}
"""


async def test_attempts_run_on_a_worker_and_come_back(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    runner = QueueAttemptRunner(pool)
    async with (
        Runtime(
            data_dir=tmp_path, store=SqliteStore(tmp_path / "e.db"), attempt_runner=runner
        ) as runtime,
        anyio.create_task_group() as group,
    ):
        worker = Worker(pool, runtime.store, tmp_path, concurrency=4)
        await group.start(runner.serve)
        await group.start(worker.run)
        with anyio.fail_after(30):
            execution = await runtime.run(FLOW, {"n": 4})
        group.cancel_scope.cancel()
    assert execution.state.current is State.SUCCESS, execution
    by_id = {t.task_id: t for t in execution.task_run_list}
    assert by_id["first"].outputs == {"value": "40"}
    script = by_id["script"]
    assert script.outputs is not None
    assert script.outputs["vars"] == {"x": 1}
    assert script.attempts is not None
    assert script.attempts[0].metrics[0].name == "n"
    assert [a.state.current for a in by_id["flaky"].attempts or []] == [State.FAILED, State.SUCCESS]
    assert worker.completed == 1 + 3 + 1 + 2
    logs = [e for e in runtime.events_of(execution.id) if type(e).__name__ == "LogEmitted"]
    messages = [getattr(e, "message", "") for e in logs]
    assert any(m.startswith("a 40 20") for m in messages), messages


async def test_a_late_result_after_a_lost_lease_is_rejected(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    flow = """
id: slowpoke
namespace: cluster.tests
tasks:
  - {id: nap, type: Sleep, duration: PT0.6S, retry: {type: constant, interval: PT0.01S, maxAttempt: 2}}
"""
    runner = QueueAttemptRunner(pool)
    async with (
        Runtime(
            data_dir=tmp_path, store=SqliteStore(tmp_path / "e.db"), attempt_runner=runner
        ) as runtime,
        anyio.create_task_group() as group,
    ):
        # a worker whose heartbeats never come in time: its lease expires during the attempt
        slow = Worker(pool, runtime.store, tmp_path, lease_seconds=0.2, heartbeat_seconds=5.0)
        await group.start(runner.serve)
        await group.start(slow.run)
        handle = await runtime.start(flow)
        await anyio.sleep(0.4)
        assert await sweep_expired(pool) == 1
        good = Worker(pool, runtime.store, tmp_path)
        await group.start(good.run)
        with anyio.fail_after(30):
            execution = await handle.result()
        await anyio.sleep(0.5)
        group.cancel_scope.cancel()
    assert execution.state.current is State.SUCCESS
    attempts = execution.task_run_list[0].attempts or []
    assert [a.state.current for a in attempts] == [State.FAILED, State.SUCCESS]
    assert slow.rejected == 1  # its first attempt came back after the lease was gone
    assert slow.completed + good.completed == 1  # the retry, on whichever claimed it


LONG = """
id: long
namespace: cluster.tests
tasks:
  - {id: forever, type: io.kestra.plugin.scripts.shell.Commands, commands: ["sleep 60"]}
"""


@asynccontextmanager
async def long_attempt_on_a_worker(
    pool: AsyncConnectionPool, tmp_path: Path, **worker_options: Any
) -> AsyncIterator[tuple[ExecutionHandle, Worker, anyio.abc.TaskGroup]]:
    """An execution whose one attempt (a minute of ``sleep``) runs on a worker, once it
    runs there; the task group holds the queue's and the worker's loops."""
    runner = QueueAttemptRunner(pool)
    async with (
        Runtime(
            data_dir=tmp_path, store=SqliteStore(tmp_path / "e.db"), attempt_runner=runner
        ) as runtime,
        anyio.create_task_group() as group,
    ):
        worker = Worker(pool, runtime.store, tmp_path, **worker_options)
        await group.start(runner.serve)
        await group.start(worker.run)
        handle = await runtime.start(LONG)
        with anyio.fail_after(10):
            while not worker._running:  # noqa: ASYNC110 - polling a test probe
                await anyio.sleep(0.01)
        yield handle, worker, group
        group.cancel_scope.cancel()


async def stopped(worker: Worker) -> None:
    """Return once the worker runs nothing any more (10 s at most)."""
    with anyio.fail_after(10):
        while worker._running:  # noqa: ASYNC110 - polling a test probe
            await anyio.sleep(0.01)


async def test_kill_reaches_a_running_attempt_on_a_worker(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    async with long_attempt_on_a_worker(pool, tmp_path) as (handle, worker, _):
        started = anyio.current_time()
        await handle.kill()
        with anyio.fail_after(10):
            execution = await handle.result()
        await stopped(worker)
        took = anyio.current_time() - started
    assert execution.state.current is State.KILLED
    assert took < 1.0  # the worker stopped the process within a second


async def test_a_kill_hint_stops_the_attempt_without_waiting_for_the_heartbeat(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    hints: list[str] = []

    async def listen(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with pool.connection() as connection:
            await connection.execute(f"LISTEN {TASKS_CHANNEL}")
            task_status.started()
            async for notice in connection.notifies():
                hints.append(notice.payload)  # noqa: PERF401 - the stream never ends

    # heartbeats an hour apart: only the NOTIFY hint can bring the kill in time
    async with long_attempt_on_a_worker(pool, tmp_path, heartbeat_seconds=3600) as (
        handle,
        worker,
        group,
    ):
        await group.start(listen)
        await handle.kill()
        await stopped(worker)
        with anyio.fail_after(10):
            execution = await handle.result()
    assert execution.state.current is State.KILLED
    assert f"kill {worker.id}" in hints  # addressed to the worker running it, not to all


async def test_an_api_node_creates_an_executor_runs_and_commands_travel(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    from runtime.cluster import ClusterPlacement, Commands, Executor, Leases, QueueAttemptRunner

    flow = """
id: gated
namespace: cluster.tests
tasks:
  - {id: before, type: Return, format: "{{ inputs.n }}"}
  - id: ask
    type: Pause
    onResume:
      - {id: ok, type: BOOLEAN}
  - {id: after, type: Return, format: "{{ outputs.ask.onResume.ok }} {{ outputs.before.value }}"}
inputs:
  - {id: n, type: INT}
"""
    db = tmp_path / "shared.db"
    runner = QueueAttemptRunner(pool)
    async with (
        Runtime(
            data_dir=tmp_path, store=SqliteStore(db), attempt_runner=runner, recover=False
        ) as executor_runtime,
        anyio.create_task_group() as group,
    ):
        executor = Executor(executor_runtime, pool, "executor-1", runner, lease_seconds=2.0)
        executor_runtime.placement = executor.placement
        await group.start(executor.run)
        worker = Worker(pool, executor_runtime.store, tmp_path)
        await group.start(worker.run)
        api_placement = ClusterPlacement(Leases(pool, "api-1"), Commands(pool, "api-1"))
        async with Runtime(
            data_dir=tmp_path, store=SqliteStore(db), placement=api_placement, recover=False
        ) as api:
            handle = await api.start(flow, {"n": 7})
            with anyio.fail_after(20):
                while (await api.get_execution(handle.id)).state.current is not State.PAUSED:  # type: ignore[union-attr]  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            from runtime.errors import InputValidationError

            with pytest.raises(InputValidationError):
                await api.resume(handle.id, {"ok": "perhaps"})
            await api.resume(handle.id, {"ok": "true"})
            with anyio.fail_after(20):
                done = await handle.result()
            assert done.state.current is State.SUCCESS
            assert done.task_run_list[-1].outputs == {"value": "true 7"}
            # followed from afar in two parts (before and after the pause), folded as it went
            assert done == await executor_runtime.get_execution(handle.id)
            restarted_flow = await api.start(
                "id: boom\nnamespace: cluster.tests\ntasks:\n  - {id: f, type: Fail}\n"
            )
            with anyio.fail_after(20):
                failed = await restarted_flow.result()
            assert failed.state.current is State.FAILED
            changed = await api.change_status(failed.id, State.WARNING)
            assert changed.state.current is State.WARNING
        group.cancel_scope.cancel()
    assert executor.owned == {}


async def test_a_new_owner_waits_for_the_attempt_a_dead_executor_left_on_a_worker(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    from runtime.cluster import Executor, QueueAttemptRunner

    flow = """
id: handover
namespace: cluster.tests
tasks:
  - {id: first, type: Return, format: one}
  - {id: nap, type: io.kestra.plugin.scripts.shell.Commands, commands: ["sleep 1.5", "echo ran >> ../../../side-effect.txt"]}
  - {id: last, type: Return, format: "{{ outputs.first.value }}"}
"""
    db = tmp_path / "shared.db"
    async with anyio.create_task_group() as outer:
        worker_store = SqliteStore(db)
        await worker_store.open()
        worker = Worker(pool, worker_store, tmp_path)
        await outer.start(worker.run)
        execution_id = ""
        with anyio.CancelScope() as crash:
            runner = QueueAttemptRunner(pool)
            async with (
                Runtime(
                    data_dir=tmp_path, store=SqliteStore(db), attempt_runner=runner, recover=False
                ) as first,
                anyio.create_task_group() as group,
            ):
                executor = Executor(first, pool, "executor-a", runner, lease_seconds=1.0)
                first.placement = executor.placement
                await group.start(executor.run)
                handle = await first.start(flow)
                execution_id = handle.id
                with anyio.fail_after(10):
                    while not worker._running:  # noqa: ASYNC110 - polling a test probe
                        await anyio.sleep(0.01)
                await first.store.flush()
                crash.cancel()  # executor-a dies: no stop, no hand-over, its lease just expires
        runner_b = QueueAttemptRunner(pool)
        async with (
            Runtime(
                data_dir=tmp_path, store=SqliteStore(db), attempt_runner=runner_b, recover=False
            ) as second,
            anyio.create_task_group() as group,
        ):
            executor_b = Executor(second, pool, "executor-b", runner_b, lease_seconds=1.0)
            second.placement = executor_b.placement
            await group.start(executor_b.run)
            with anyio.fail_after(20):
                while execution_id not in second._channels:  # noqa: ASYNC110 - a test probe
                    await anyio.sleep(0.05)
                done = await second.handle(execution_id).result()
            group.cancel_scope.cancel()
        outer.cancel_scope.cancel()
        await worker_store.close()
    assert done.state.current is State.SUCCESS
    nap = done.task_run_list[1]
    assert [a.state.current for a in nap.attempts or []] == [State.SUCCESS]  # waited for, not rerun
    assert done.task_run_list[2].outputs == {"value": "one"}
    assert worker.completed == 3


class _Fence:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.owned: dict[str, int] = {}
        self.revoked: set[str] = set()
        self.found_lost: set[str] = set()
        self.lease_seconds = 2.0

    def lost(self, execution_ids: set[str]) -> None:
        self.found_lost |= execution_ids


async def test_the_store_writes_an_executors_events_only_while_it_holds_the_lease(
    pool: AsyncConnectionPool, pg_url: str
) -> None:
    from runtime.cluster import Leases
    from runtime.engine import ExecutionCreated, ExecutionStateChanged
    from runtime.store._postgres import PostgresStore

    def created(execution_id: str) -> ExecutionCreated:
        return ExecutionCreated(
            execution_id=execution_id, seq=1, time=datetime.now(UTC), namespace="n",
            flow_id="f", flow_revision=1, inputs={}, labels=[], metadata={},
        )  # fmt: skip

    def running(execution_id: str) -> ExecutionStateChanged:
        return ExecutionStateChanged(
            execution_id=execution_id, seq=2, time=datetime.now(UTC), state=State.RUNNING
        )

    async with PostgresStore(pg_url) as store:
        fence = _Fence("executor-a")
        store.fence = fence
        a, b = Leases(pool, "executor-a"), Leases(pool, "executor-b")
        token = await a.acquire("x")
        assert token is not None
        fence.owned["x"] = token
        store.append(created("x"))
        store.append(created("free"))  # not fenced: no lease of ours
        await store.flush()
        assert [e.seq for e in await store.events("x")] == [1]
        async with pool.connection() as connection:  # executor-a stalls; its lease expires
            await connection.execute(
                "UPDATE execution_leases SET expires_at = now() - interval '1 second'"
            )
        assert await b.claim(10) == [("x", token + 1)]
        store.append(running("x"))  # a stale owner's write...
        await store.flush()
        assert [e.seq for e in await store.events("x")] == [1]  # ...is not written
        assert fence.found_lost == {"x"}
        fence.revoked.add("gone")
        store.append(created("gone"))
        await store.flush()
        assert await store.events("gone") == []
        assert [e.seq for e in await store.events("free")] == [1]


def test_a_workers_request_leaves_out_the_outputs_a_task_never_reads() -> None:
    from runtime.engine._taskrun import task_roots
    from runtime.expressions import ExpressionEngine
    from runtime.parsing import parse_flow

    flow = parse_flow(
        "id: f\nnamespace: n\ntasks:\n"
        "  - {id: a, type: Return, format: '{{ taskrun.value }}'}\n"
        "  - {id: b, type: Return, format: '{{ outputs.a.value }}'}\n"
        "  - {id: c, type: Return, format: '{{ render(vars.x) }}'}\n"
        "  - {id: d, type: io.kestra.plugin.scripts.shell.Commands, commands: ['echo {{ parent.taskrun.value }}']}\n"
    )
    engine = ExpressionEngine()
    a, b, c, d = flow.tasks
    assert task_roots(a, engine) == frozenset({"taskrun"})
    assert task_roots(b, engine) == frozenset({"outputs"})
    assert task_roots(c, engine) is None  # render() reads what it is given: send everything
    assert task_roots(d, engine) == frozenset({"parent"})
    assert task_roots(a, engine) is task_roots(a, engine)  # cached


async def test_an_attempt_is_queued_only_once_its_task_run_is_durable(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    """Regression: attempts were queued while the task run's events still waited for a
    group commit; an executor dying then left a new owner unaware of the task run, so it
    created another and ran the task again."""
    import sqlite3

    flow = """
id: durable
namespace: cluster.tests
tasks:
  - {id: one, type: Return, format: x}
  - {id: two, type: Return, format: y}
"""
    runner = QueueAttemptRunner(pool)
    db = tmp_path / "e.db"
    async with (
        # nobody flushes for 1.5 s unless the engine asks
        Runtime(
            data_dir=tmp_path, store=SqliteStore(db, commit_interval=1.5), attempt_runner=runner
        ) as runtime,
        anyio.create_task_group() as group,
    ):
        await group.start(runner.serve)
        await group.start(Worker(pool, runtime.store, tmp_path).run)
        handle = await runtime.start(flow)
        with anyio.fail_after(1.2):  # the second task's attempt, queued after the first ended
            while True:
                async with pool.connection() as connection:
                    row = await (
                        await connection.execute(
                            "SELECT task_run_id FROM task_queue ORDER BY id OFFSET 1"
                        )
                    ).fetchone()
                if row is not None:
                    break
                await anyio.sleep(0.005)
        assert row is not None
        queued = str(row[0])
        with sqlite3.connect(db) as reader:
            bodies = [bytes(b).decode() for (b,) in reader.execute("SELECT body FROM events")]
        with anyio.fail_after(10):
            assert (await handle.result()).state.current is State.SUCCESS
        group.cancel_scope.cancel()
    created = [b for b in bodies if "TaskRunCreated" in b and queued in b]
    assert created, bodies


async def test_waiting_for_an_execution_that_ended_elsewhere_does_not_wait_a_poll(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    """Regression: an API node's result() slept a poll interval before its first look, so
    waiting for 200 ended executions one after another took 40 s."""
    from runtime.cluster import ClusterPlacement, Commands, Executor, Leases

    db = tmp_path / "shared.db"
    runner = QueueAttemptRunner(pool)
    async with (
        Runtime(
            data_dir=tmp_path, store=SqliteStore(db), attempt_runner=runner, recover=False
        ) as executor_runtime,
        anyio.create_task_group() as group,
    ):
        executor = Executor(executor_runtime, pool, "executor-1", runner, lease_seconds=2.0)
        executor_runtime.placement = executor.placement
        await group.start(executor.run)
        await group.start(Worker(pool, executor_runtime.store, tmp_path).run)
        placement = ClusterPlacement(Leases(pool, "api-1"), Commands(pool, "api-1"))
        async with Runtime(
            data_dir=tmp_path, store=SqliteStore(db), placement=placement, recover=False
        ) as api:
            api.remote_poll = 600.0  # X  # a sleep before the first look would never end here
            handle = await api.start(
                "id: quick\nnamespace: cluster.tests\ntasks:\n  - {id: r, type: Return, format: x}\n"
            )
            with anyio.fail_after(20):
                while True:
                    stored = await executor_runtime.get_execution(handle.id)
                    if stored is not None and stored.state.current.terminal:
                        break
                    await anyio.sleep(0.02)
            with anyio.fail_after(10):
                ended = await handle.result()
        group.cancel_scope.cancel()
    assert ended.state.current is State.SUCCESS
    assert ended == stored


async def test_a_long_transaction_elsewhere_does_not_stop_the_queue(
    pool: AsyncConnectionPool, pg_url: str, tmp_path: Path
) -> None:
    """A client that holds a transaction open, with a queued attempt's row locked, stalls
    neither the claims of other attempts nor their outcomes (SKIP LOCKED, no table locks)."""
    import psycopg

    base, _, query = pg_url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
    async with pool.connection() as connection:
        await connection.execute(
            "INSERT INTO task_queue (execution_id, task_run_id, attempt, request) "
            "VALUES ('other', 'held', 1, '')"
        )
    runner = QueueAttemptRunner(pool)
    async with await psycopg.AsyncConnection.connect(base) as blocker:
        await blocker.execute(f'SET search_path TO "{schema}"')
        await blocker.execute("SELECT txid_current()")  # a transaction, with a snapshot
        await blocker.execute("SELECT id FROM task_queue WHERE task_run_id = 'held' FOR UPDATE")
        async with (
            Runtime(
                data_dir=tmp_path, store=SqliteStore(tmp_path / "e.db"), attempt_runner=runner
            ) as runtime,
            anyio.create_task_group() as group,
        ):
            await group.start(runner.serve)
            await group.start(Worker(pool, runtime.store, tmp_path).run)
            with anyio.fail_after(20):
                execution = await runtime.run(
                    "id: busy\nnamespace: cluster.tests\ntasks:\n"
                    "  - {id: each, type: ForEach, values: [a, b, c, d], concurrencyLimit: 0,"
                    " tasks: [{id: r, type: Return, format: '{{ taskrun.value }}'}]}\n"
                )
            group.cancel_scope.cancel()
        assert blocker.info.transaction_status.name == "INTRANS"  # held all along
        await blocker.rollback()
    assert execution.state.current is State.SUCCESS
    assert len(execution.task_run_list) == 5


async def test_an_attempt_given_up_while_it_is_queued_is_not_remembered(
    pool: AsyncConnectionPool,
) -> None:
    """An executor that stops waiting for an attempt before it reached the queue (the
    execution was given up meanwhile) keeps no waiter for it: nothing grows per attempt."""
    runner = QueueAttemptRunner(pool)
    release = anyio.Event()

    async def durable() -> None:
        await release.wait()

    request = _request("e", "given-up", 1)
    async with anyio.create_task_group() as group:
        await group.start(runner.serve)
        with anyio.move_on_after(0.2) as waiting:
            await runner.run(request, lambda level, message: None, durable)
        assert waiting.cancelled_caught
        release.set()
        with anyio.fail_after(10):
            while True:  # until the enqueue loop has inserted the row
                async with pool.connection() as connection:
                    row = await (
                        await connection.execute(
                            "SELECT id FROM task_queue WHERE task_run_id = 'given-up'"
                        )
                    ).fetchone()
                if row is not None:
                    break
                await anyio.sleep(0.02)
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()
    assert runner._waiting == {}


def _request(execution_id: str, task_run_id: str, attempt: int) -> AttemptRequest:
    return AttemptRequest(
        execution_id=execution_id,
        namespace="ns",
        flow_id="f",
        flow_revision=1,
        task_id="t",
        task_run_id=task_run_id,
        attempt=attempt,
        value=None,
        variables={},
    )


async def _nothing() -> None:
    return None


async def test_an_executor_whose_lease_was_taken_over_queues_nothing(
    pool: AsyncConnectionPool,
) -> None:
    """Regression (found by cutting an executor off the network): an executor that lost
    an execution queued its attempts anyway once the network was back, so a task run that
    the new owner had already finished ran again, and a queued attempt's results could be
    turned away from the new owner, which then waited for them forever."""
    from runtime.cluster import Leases

    async def queue_row(task_run_id: str, attempt: int) -> tuple[Any, ...] | None:
        async with pool.connection() as connection:
            cursor = await connection.execute(
                "SELECT executor FROM task_queue WHERE task_run_id = %s AND attempt = %s",
                (task_run_id, attempt),
            )
            return await cursor.fetchone()

    old, new = QueueAttemptRunner(pool, "runner-a"), QueueAttemptRunner(pool, "runner-b")
    old.fence, new.fence = _Fence("executor-a"), _Fence("executor-b")
    token = await Leases(pool, "executor-a").acquire("x")
    assert token is not None
    old.fence.owned["x"] = token
    async with anyio.create_task_group() as group:
        await group.start(old.serve)
        await group.start(new.serve)
        group.start_soon(old.run, _request("x", "t1", 1), lambda level, message: None, _nothing)
        with anyio.fail_after(10):
            while await queue_row("t1", 1) is None:  # noqa: ASYNC110 - a test probe
                await anyio.sleep(0.02)
        assert await queue_row("t1", 1) == ("runner-a",)  # queued under its lease
        async with pool.connection() as connection:  # executor-a stalls; its lease expires
            await connection.execute(
                "UPDATE execution_leases SET expires_at = now() - interval '1 second'"
            )
        assert await Leases(pool, "executor-b").claim(10) == [("x", token + 1)]
        new.fence.owned["x"] = token + 1
        group.start_soon(new.run, _request("x", "t1", 1), lambda level, message: None, _nothing)
        with anyio.fail_after(10):
            while await queue_row("t1", 1) != ("runner-b",):  # noqa: ASYNC110 - a test probe
                await anyio.sleep(0.02)
        # the old owner, back from its stall, still believes it owns the execution
        with anyio.move_on_after(0.5) as waiting:
            await old.run(_request("x", "t2", 1), lambda level, message: None, _nothing)
        assert waiting.cancelled_caught  # not queued: it waits until it gives the execution up
        with anyio.move_on_after(0.5):
            await old.run(_request("x", "t1", 1), lambda level, message: None, _nothing)
        group.cancel_scope.cancel()
    assert await queue_row("t2", 1) is None
    assert await queue_row("t1", 1) == ("runner-b",)  # its results still go to the new owner


async def test_a_store_write_cut_off_mid_transaction_lets_go_of_the_lease_locks(
    pool: AsyncConnectionPool, pg_url: str
) -> None:
    """Regression (found by cutting an executor off the network in the middle of a store
    write): the lease rows the write had locked stayed locked for as long as the
    partition lasted, so no other executor could take the executions over."""
    import psycopg

    from runtime.cluster import Leases
    from runtime.store._pg_sql import Batch, apply_fence

    token = await Leases(pool, "executor-a").acquire("x")
    assert token is not None
    fence = _Fence("executor-a")
    fence.owned["x"] = token
    batch = Batch()
    batch.events.append(("x", 1, b"{}"))
    base, _, query = pg_url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if p)["schema"]
    async with await psycopg.AsyncConnection.connect(base) as stalled:
        await stalled.execute(f'SET search_path TO "{schema}"')
        assert await apply_fence(stalled, batch, fence) == set()  # the lease row is locked
        async with pool.connection() as other:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await other.execute(
                    "SELECT 1 FROM execution_leases WHERE execution_id = 'x' FOR UPDATE NOWAIT"
                )
        await anyio.sleep(fence.lease_seconds / 2 + 0.5)  # the process is cut off...
        async with pool.connection() as other:  # ...and PostgreSQL let go of the lock
            await other.execute(
                "SELECT 1 FROM execution_leases WHERE execution_id = 'x' FOR UPDATE NOWAIT"
            )
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            await stalled.execute("SELECT 1")  # that session was ended


async def test_an_attempt_of_an_execution_that_ended_stops_without_waiting_for_a_heartbeat(
    pool: AsyncConnectionPool, tmp_path: Path
) -> None:
    """Regression: a kill ends the execution at once, and its end deletes the queue rows;
    when that came before the kill's own statement, nothing told the worker, which
    stopped the process only at its next heartbeat (kill p50 160 ms instead of 12)."""
    from runtime.cluster._queue import forget_execution

    async with long_attempt_on_a_worker(pool, tmp_path, heartbeat_seconds=3600) as (
        handle,
        worker,
        _,
    ):
        await forget_execution(pool, handle.id)  # the end's clean-up, before any kill
        await stopped(worker)
        await handle.kill()
