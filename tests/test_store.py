"""The Store contract, on every implementation."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from runtime.engine import Event, Execution, Runtime, State, execution_json, fold
from runtime.store import ExecutionQuery, MemoryStore, SqliteStore, Store
from runtime.store._migrations import MIGRATIONS, SchemaTooNewError

StoreFactory = Callable[[Path], Store]

STORES: dict[str, StoreFactory] = {
    "memory": lambda path: MemoryStore(),
    "sqlite": lambda path: SqliteStore(path / "store.db"),
}


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with STORES[request.param](tmp_path) as opened:
        yield opened


FLOW = """
id: sample
namespace: company.team
labels: {team: data}
tasks:
  - {id: speak, type: Log, message: ["one", "two"], level: WARN}
  - {id: count, type: io.kestra.plugin.scripts.shell.Commands, commands: ['echo ''::{"metrics":[{"name":"rows","type":"counter","value":4}]}::''']}
"""


async def run_into(
    store: Store, flow: str = FLOW, count: int = 1
) -> list[tuple[Execution, list[Event]]]:
    """Run executions in a memory runtime and copy their events into ``store``."""
    runs: list[tuple[Execution, list[Event]]] = []
    async with Runtime() as runtime:  # real time: each execution starts later than the last
        for _ in range(count):
            handle = await runtime.start(flow)
            execution = await handle.result()
            events = runtime.events_of(handle.id)
            for event in events:
                store.append(event)
            runs.append((execution, events))
    await store.flush()
    return runs


async def test_events_and_the_document_come_back(store: Store) -> None:
    [(execution, events)] = await run_into(store)
    assert [e.seq for e in await store.events(execution.id)] == [e.seq for e in events]
    assert [e.seq for e in await store.events(execution.id, after_seq=3)] == [
        e.seq for e in events if e.seq > 3
    ]
    stored = await store.get_execution(execution.id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)
    assert await store.get_execution("missing") is None


async def test_a_snapshot_plus_later_events_is_the_document(store: Store) -> None:
    [(execution, events)] = await run_into(store)
    middle = len(events) // 2
    store.snapshot(fold(events[:middle]), events[middle - 1].seq)
    await store.flush()
    stored = await store.get_execution(execution.id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)


async def test_search_filters_and_pages_newest_first(store: Store) -> None:
    runs = await run_into(store, count=3)
    await run_into(store, FLOW.replace("company.team", "other"))
    page = await store.search(ExecutionQuery(namespace="company", page=1, size=2))
    assert page.total == 3
    assert [e.id for e in page.items] == [e.id for e, _ in reversed(runs)][:2]
    second = await store.search(ExecutionQuery(namespace="company", page=2, size=2))
    assert [e.id for e in second.items] == [runs[0][0].id]
    assert (await store.search(ExecutionQuery(flow_id="sample"))).total == 4
    assert (await store.search(ExecutionQuery(states=[State.FAILED]))).total == 0
    assert (await store.search(ExecutionQuery(states=[State.SUCCESS]))).total == 4
    assert (await store.search(ExecutionQuery(labels={"team": "data"}))).total == 4
    assert (await store.search(ExecutionQuery(labels={"team": "ops"}))).total == 0
    first_start = runs[0][0].state.start_date
    later = await store.search(
        ExecutionQuery(started_after=first_start + timedelta(microseconds=1))
    )
    assert later.total == 3
    last_end = runs[-1][0].state.end_date
    assert last_end is not None
    ended = await store.search(ExecutionQuery(namespace="company", ended_after=last_end))
    assert [e.id for e in ended.items] == [runs[-1][0].id]


async def test_logs_filter_by_task_run_attempt_and_level(store: Store) -> None:
    [(execution, _)] = await run_into(store)
    logs = await store.logs(execution.id)
    speak = [log for log in logs if log.task_id == "speak"]
    assert [(log.level, log.message) for log in speak] == [("WARN", "one"), ("WARN", "two")]
    run_id = speak[0].task_run_id
    assert run_id is not None
    assert len(await store.logs(execution.id, task_run_id=run_id, attempt=1)) == 2
    assert await store.logs(execution.id, task_run_id=run_id, attempt=2) == []
    assert len(await store.logs(execution.id, min_level="WARN")) >= 2
    assert await store.logs(execution.id, min_level="ERROR") == []


async def test_metrics_per_execution_and_aggregated_per_flow(store: Store) -> None:
    runs = await run_into(store, count=2)
    entries = await store.metrics(runs[0][0].id)
    assert [(m.name, m.type, m.value) for m in entries] == [("rows", "counter", 4.0)]
    total = await store.metric_aggregate("company.team", "sample", "rows")
    assert (total.count, total.sum, total.avg, total.min, total.max) == (2, 8.0, 4.0, 4.0, 4.0)
    none = await store.metric_aggregate(
        "company.team", "sample", "rows", end=datetime(2000, 1, 1, tzinfo=UTC)
    )
    assert none.count == 0


async def test_unfinished_delete_and_purge(store: Store) -> None:
    runs = await run_into(store, count=2)
    assert await store.unfinished() == []
    assert await store.delete_execution(runs[0][0].id)
    assert not await store.delete_execution(runs[0][0].id)
    assert await store.get_execution(runs[0][0].id) is None
    assert await store.events(runs[0][0].id) == []
    assert await store.logs(runs[0][0].id) == []
    kept = await store.purge(runs[1][0].state.start_date)
    assert kept == []
    gone = await store.purge(datetime.now(UTC) + timedelta(days=1))
    assert [entry[2] for entry in gone] == [runs[1][0].id]
    assert (await store.search(ExecutionQuery())).total == 0


async def test_flow_revisions_are_kept(store: Store) -> None:
    await store.save_flow("ns", "f", 1, "id: f")
    await store.save_flow("ns", "f", 2, "id: f  # changed")
    await store.save_flow("ns", "f", 1, "ignored: the revision exists")
    revisions = await store.flow_revisions("ns", "f")
    assert [(r.revision, r.source) for r in revisions] == [(1, "id: f"), (2, "id: f  # changed")]


async def test_deleted_flows_leave_the_list_but_keep_their_revisions(store: Store) -> None:
    await store.save_flow("ns", "a", 1, "id: a")
    await store.save_flow("ns", "b", 1, "id: b")
    await store.save_flow("ns", "b", 2, "id: b  # two")
    assert [(f.id, f.revision) for f in await store.latest_flows()] == [("a", 1), ("b", 2)]
    assert await store.delete_flow("ns", "b")
    assert not await store.delete_flow("ns", "b")
    assert not await store.delete_flow("ns", "missing")
    assert [f.id for f in await store.latest_flows()] == ["a"]
    assert len(await store.flow_revisions("ns", "b")) == 2
    await store.save_flow("ns", "b", 3, "id: b  # back")
    assert [(f.id, f.revision) for f in await store.latest_flows()] == [("a", 1), ("b", 3)]


async def test_key_values_with_expiry(store: Store) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    await store.kv_put("ns", "k", {"a": [1, 2]}, now + timedelta(minutes=1))
    assert await store.kv_get("ns", "k", now) == {"a": [1, 2]}
    assert await store.kv_get("other", "k", now) is None
    assert await store.kv_get("ns", "k", now + timedelta(minutes=2)) is None
    await store.kv_put("ns", "k", 3, None)
    assert await store.kv_delete("ns", "k")
    assert not await store.kv_delete("ns", "k")


async def test_sqlite_keeps_everything_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "tiercel.db"
    async with SqliteStore(path) as first:
        [(execution, _)] = await run_into(first)
    async with SqliteStore(path) as second:
        stored = await second.get_execution(execution.id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)


async def test_sqlite_uses_wal_and_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "tiercel.db"
    async with SqliteStore(path):
        pass
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        assert version == len(MIGRATIONS)
        connection.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(SchemaTooNewError, match="newer than this Tiercel"):
        async with SqliteStore(path):
            pass


async def test_an_older_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "tiercel.db"
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        connection.executescript(MIGRATIONS[0])
        connection.execute("INSERT INTO schema_version (version) VALUES (1)")
        connection.execute(
            "INSERT INTO flows VALUES ('ns', 'old', 1, 'id: old', '2026-01-01T00:00:00+00:00')"
        )
    connection.close()
    async with SqliteStore(path) as store:
        assert [f.id for f in await store.latest_flows()] == ["old"]
        assert await store.delete_flow("ns", "old")
        assert await store.latest_flows() == []
    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        assert version == len(MIGRATIONS)
    connection.close()


async def test_group_commit_batches_many_events_into_few_transactions(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db", commit_interval=0.05)
    transactions = 0
    from runtime.store import _sqlite

    original = _sqlite._write_batch

    def counting(connection: sqlite3.Connection, batch: _sqlite._Batch) -> None:
        nonlocal transactions
        transactions += 1
        original(connection, batch)

    _sqlite._write_batch = counting
    try:
        async with store:
            await run_into(store, count=5)
    finally:
        _sqlite._write_batch = original
    async with SqliteStore(tmp_path / "t.db") as reopened:
        assert (await reopened.search(ExecutionQuery())).total == 5
    assert transactions <= 3


async def test_snapshots_of_one_execution_coalesce_and_flush_still_returns(tmp_path: Path) -> None:
    # Regression: two snapshots queued before a write counted twice, and flush never returned.
    async with SqliteStore(tmp_path / "t.db", commit_interval=0.05) as store:
        [(execution, events)] = await run_into(store)
        store.snapshot(fold(events[:3]), events[2].seq)
        store.snapshot(execution, events[-1].seq)
        with anyio.fail_after(5):
            await store.flush()
        stored = await store.get_execution(execution.id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)
