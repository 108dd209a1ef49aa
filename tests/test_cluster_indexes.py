"""Every statement a cluster runs can use an index: a real workload (an API node, an
executor, a worker, all on PostgreSQL) runs with sequential scans switched off in every
connection, and afterwards PostgreSQL's own counters must show no sequential scan of any
table. A statement no index fits is still planned as a sequential scan (at a huge cost),
so the counters catch it, whatever the table's size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import psycopg
import pytest

from runtime.cluster import (
    ClusterPlacement,
    Commands,
    Executor,
    Leases,
    QueueAttemptRunner,
    Worker,
    open_pool,
    sweep_expired,
)
from runtime.engine import Runtime, State
from runtime.store import ExecutionQuery, PostgresStore
from tests import pg

MIXED = """
id: mixed
namespace: cluster.tests
tasks:
  - id: each
    type: ForEach
    values: [a, b, c, d, e, f]
    concurrencyLimit: 0
    tasks:
      - {id: say, type: Return, format: "{{ taskrun.value }}"}
  - id: flaky
    type: Log
    message: "{{ taskrun.attemptsCount > 0 ? 'ok' : nope }}"
    retry: {type: constant, interval: PT0.01S, maxAttempt: 2}
  - id: ask
    type: Pause
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    commands: ["echo '::{\\"outputs\\":{\\"x\\":1}}::'"]
"""

LONG = """
id: long
namespace: cluster.tests
tasks:
  - {id: forever, type: io.kestra.plugin.scripts.shell.Commands, commands: ["sleep 60"]}
"""

# the migrations' bookkeeping: read once at start, a table of one row
UNINDEXED = {"cluster_schema_version", "schema_version"}


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    schemas = pg.Schemas(pg.require_postgres())
    try:
        url = schemas.new()
        monkeypatch.setenv("PGOPTIONS", "-c enable_seqscan=off")  # libpq: every connection
        yield url
    finally:
        schemas.drop()


def _counters(url: str) -> dict[str, tuple[int, int]]:
    """(sequential scans, index scans) per table of the test's schema, as PostgreSQL's
    statistics have them now."""
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(pg.base_url(), autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        rows = connection.execute(
            "SELECT relname, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE schemaname = %s",
            (schema,),
        ).fetchall()
    return {str(name): (int(seq), int(idx)) for name, seq, idx in rows}


def _reset_counters(url: str) -> None:
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(pg.base_url(), autocommit=True) as connection:
        connection.execute(
            "SELECT pg_stat_reset_single_table_counters(relid) FROM pg_stat_user_tables "
            "WHERE schemaname = %s",
            (schema,),
        )


async def _workload(url: str, data: Path) -> None:
    pool = await open_pool(url)
    try:
        runner = QueueAttemptRunner(pool, "executor-1")
        async with (
            Runtime(data_dir=data, store=PostgresStore(url), attempt_runner=runner) as executing,
            anyio.create_task_group() as group,
        ):
            executor = Executor(executing, pool, "executor-1", runner, lease_seconds=2.0)
            executing.placement = executor.placement
            await group.start(executor.run)
            await group.start(Worker(pool, executing.store, data, lease_seconds=2.0).run)
            api_placement = ClusterPlacement(Leases(pool, "api-1"), Commands(pool, "api-1"))
            async with Runtime(
                data_dir=data, store=PostgresStore(url), placement=api_placement, recover=False
            ) as api:
                handle = await api.start(MIXED)
                with anyio.fail_after(30):
                    while (await api.get_execution(handle.id)).state.current is not State.PAUSED:  # type: ignore[union-attr]  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                await api.resume(handle.id, {})
                with anyio.fail_after(30):
                    mixed = await handle.result()
                assert mixed.state.current is State.SUCCESS
                long = await api.start(LONG)
                with anyio.fail_after(30):
                    while not any(  # noqa: ASYNC110 - until a worker runs it
                        t.state.current is State.RUNNING
                        for t in (await api.get_execution(long.id)).task_run_list  # type: ignore[union-attr]
                    ):
                        await anyio.sleep(0.05)
                await api.kill(long.id)
                with anyio.fail_after(30):
                    killed = await long.result()
                assert killed.state.current is State.KILLED
                restarted = await api.restart(killed.id)
                await api.kill(restarted.id)
                await sweep_expired(pool)
                page = await api.store.search(ExecutionQuery(namespace="cluster.tests"))
                assert page.total == 2  # a restart runs again under the same id
            group.cancel_scope.cancel()
    finally:
        await pool.close()


async def test_no_statement_of_a_cluster_workload_scans_a_table(
    pg_url: str, tmp_path: Path
) -> None:
    pool = await open_pool(pg_url)  # the schema, migrated, before the counters start
    await pool.close()
    async with PostgresStore(pg_url):
        pass
    _reset_counters(pg_url)

    await _workload(pg_url, tmp_path)

    # The counters of a backend reach the statistics when it ends (the pools are closed):
    # wait until they have stopped moving.
    previous: dict[str, tuple[int, int]] = {}
    with anyio.fail_after(20):
        while True:
            counters = _counters(pg_url)
            if counters == previous and counters.get("task_queue", (0, 0))[1] > 0:
                break
            previous = counters
            await anyio.sleep(0.5)
    scanned = {table: seq for table, (seq, _) in counters.items() if seq and table not in UNINDEXED}
    assert scanned == {}, f"tables read by a sequential scan: {scanned}"
    used = {table for table, (_, idx) in counters.items() if idx}
    assert {"task_queue", "task_results", "execution_leases", "commands", "events"} <= used
