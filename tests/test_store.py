"""The Store contract, on every implementation."""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import msgspec
import psycopg
import pytest
from psycopg import sql

from actors import VirtualClock
from runtime.engine import Event, Execution, Runtime, State, execution_json, fold
from runtime.model._events import ExecutionCreated, LabelsChanged, LogEmitted
from runtime.store import (
    ExecutionQuery,
    MemoryStore,
    PostgresStore,
    SqliteStore,
    Store,
    StoreUnavailableError,
    StoreUrlError,
    StoreWriteError,
    _pg_sql,
    _postgres,
    open_store,
)
from runtime.store._migrations import MIGRATIONS, SchemaTooNewError
from runtime.store._pg_migrations import MIGRATIONS as PG_MIGRATIONS
from tests import pg

StoreFactory = Callable[[], Store]
DURABLE = ["sqlite", "postgres"]


def place(kind: str, request: pytest.FixtureRequest) -> StoreFactory:
    """New store objects of ``kind``, all on one place (a SQLite file, a PostgreSQL schema)."""
    if kind == "memory":
        return MemoryStore
    if kind == "sqlite":
        path: Path = request.getfixturevalue("tmp_path") / "store.db"
        return lambda: SqliteStore(path)
    url: str = request.getfixturevalue("postgres_url")
    return lambda: PostgresStore(url)


@pytest.fixture(params=["memory", *DURABLE])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async with place(request.param, request)() as opened:
        yield opened


@pytest.fixture(params=DURABLE)
def reopenable(request: pytest.FixtureRequest) -> StoreFactory:
    """A durable store, as a factory of new objects on the same data."""
    return place(request.param, request)


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


async def test_ends_are_read_in_order_from_a_cursor(store: Store) -> None:
    (first, events), (second, _) = await run_into(store, count=2)
    for copy in ("copy-a", "copy-b", "still-running"):  # copies end when the first does
        kept = events if copy != "still-running" else events[:2]
        for event in kept:
            store.append(msgspec.structs.replace(event, execution_id=copy))
    await store.flush()
    first_end, second_end = first.state.end_date, second.state.end_date
    assert first_end is not None
    assert second_end is not None
    twins = sorted([first.id, "copy-a", "copy-b"])  # one end date: the id breaks the tie
    listed = [*((i, first_end) for i in twins), (second.id, second_end)]
    start = datetime(2000, 1, 1, tzinfo=UTC)
    assert await store.ended_since(start) == listed  # not the one still running
    assert await store.ended_since(start, limit=2) == listed[:2]
    assert await store.ended_since(first_end, twins[0]) == listed[1:]  # the next page
    assert await store.ended_since(first_end, twins[2]) == listed[3:]
    assert await store.ended_since(second_end, second.id) == []


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


async def test_search_escapes_like_wildcards_in_namespaces(store: Store) -> None:
    now = datetime.now(UTC)
    for number, namespace in enumerate(["a_b", "a_b.c", "axb", "axb.c", "a_bc", "a%b.c"]):
        store.append(
            ExecutionCreated(
                execution_id=f"e{number}",
                seq=1,
                time=now + timedelta(seconds=number),
                namespace=namespace,
                flow_id="f",
                flow_revision=1,
                inputs={},
                labels=[],
            )
        )
    await store.flush()
    found = await store.search(ExecutionQuery(namespace="a_b"))
    assert sorted(e.namespace for e in found.items) == ["a_b", "a_b.c"]
    assert [e.namespace for e in (await store.search(ExecutionQuery(namespace="a%b"))).items] == [
        "a%b.c"
    ]


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


async def test_snapshots_of_one_execution_coalesce_and_flush_still_returns(
    reopenable: StoreFactory,
) -> None:
    # Regression: two snapshots queued before a write counted twice, and flush never returned.
    async with reopenable() as store:
        store.commit_interval = 0.05  # type: ignore[attr-defined]
        [(execution, events)] = await run_into(store)
        store.snapshot(fold(events[:3]), events[2].seq)
        store.snapshot(execution, events[-1].seq)
        with anyio.fail_after(5):
            await store.flush()
        stored = await store.get_execution(execution.id)
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)


async def test_a_durable_store_keeps_everything_across_reopening(reopenable: StoreFactory) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with reopenable() as first:
        runs = await run_into(first, count=2)
        first.snapshot(runs[0][0], runs[0][1][-1].seq)
        await first.save_flow("ns", "f", 1, "id: f")
        await first.kv_put("ns", "k", {"v": [1, "two"]}, None)
        late = runs[1][1][-1]
        first.append(
            LogEmitted(
                execution_id=late.execution_id,
                seq=late.seq + 1,
                time=now,
                level="INFO",
                message="appended just before close",
            )
        )
        # no flush: closing flushes
    async with reopenable() as second:
        for execution, _ in runs:
            stored = await second.get_execution(execution.id)
            assert stored is not None
            assert execution_json(stored) == execution_json(execution)
        assert [log.message for log in await second.logs(late.execution_id)][-1] == (
            "appended just before close"
        )
        assert [m.value for m in await second.metrics(runs[0][0].id)] == [4.0]
        assert [f.id for f in await second.latest_flows()] == ["f"]
        assert await second.kv_get("ns", "k", now) == {"v": [1, "two"]}
        assert (await second.search(ExecutionQuery(labels={"team": "data"}))).total == 2


# -- PostgreSQL -------------------------------------------------------------------------


async def test_postgres_is_what_a_postgresql_url_opens(postgres_url: str, tmp_path: Path) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://")):
        opened = open_store(url, tmp_path)
        assert isinstance(opened, PostgresStore)
        assert opened.durable
    async with open_store(postgres_url, tmp_path) as store:
        [(execution, _)] = await run_into(store)
    async with open_store(postgres_url, tmp_path) as store:
        assert await store.get_execution(execution.id) is not None


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgresql://u@h/db?schema=no%20spaces", "schema 'no spaces' is not a valid name"),
        ("postgresql://u@h/db?schema=" + "s" * 64, "is not a valid name"),
        ("postgresql://u@h:port/db", "port 'port' is not a port number"),
        ("postgresql://u@h:70000/db", "port '70000' is not a port number"),
        ("postgresql://u@h/db?pool_max_size=0", "pool_max_size must be a whole number"),
        ("postgresql://u@h/db?pool_min_size=5&pool_max_size=2", "exceeds pool_max_size"),
        ("postgresql://u@h/db?nonsense=1", 'invalid URI query parameter: "nonsense"'),
    ],
)
def test_a_bad_postgresql_url_is_refused_naming_it(url: str, complaint: str) -> None:
    with pytest.raises(StoreUrlError, match=re.escape(complaint)) as caught:
        PostgresStore(url)
    assert str(caught.value).startswith(url.split("?")[0])
    assert isinstance(caught.value, ValueError)  # what open_store promised before


def test_a_password_never_shows_in_messages() -> None:
    with pytest.raises(StoreUrlError) as caught:
        open_store("postgresql://me:s3cret@h:5432/db?schema=bad%20name", Path())
    assert "s3cret" not in str(caught.value)
    assert "postgresql://me:***@h:5432/db" in str(caught.value)


async def test_an_unreachable_database_is_a_clear_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout=2)
    with anyio.fail_after(10), pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/nowhere" in str(caught.value)


async def test_postgres_compresses_snapshots_with_lz4(postgres_url: str) -> None:
    """Snapshots of large executions are megabytes: lz4 costs the server a third of
    pglz's CPU (the PostgreSQL of these tests is built with lz4, as Debian's packages are)."""
    async with PostgresStore(postgres_url) as store:
        [(execution, events)] = await run_into(store)
        store.snapshot(execution, events[-1].seq)
        await store.flush()
    schema = parse_qs(urlsplit(postgres_url).query)["schema"][0]
    async with await psycopg.AsyncConnection.connect(pg.base_url()) as c:
        cursor = await c.execute(
            "SELECT a.attcompression FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s AND t.relname = 'snapshots' AND a.attname = 'body'",
            (schema,),
        )
        assert await cursor.fetchone() == ("l",)


async def test_postgres_refuses_a_newer_schema(postgres_url: str) -> None:
    async with PostgresStore(postgres_url):
        pass
    schema = parse_qs(urlsplit(postgres_url).query)["schema"][0]
    async with await psycopg.AsyncConnection.connect(pg.base_url(), autocommit=True) as c:
        cursor = await c.execute(
            sql.SQL("SELECT max(version) FROM {}.schema_version").format(sql.Identifier(schema))
        )
        assert await cursor.fetchone() == (len(PG_MIGRATIONS),)
        await c.execute(
            sql.SQL("INSERT INTO {}.schema_version VALUES (99)").format(sql.Identifier(schema))
        )
    with pytest.raises(SchemaTooNewError, match="newer than this Tiercel"):
        async with PostgresStore(postgres_url):
            pass


async def test_concurrent_opens_of_one_schema_migrate_it_once(postgres_url: str) -> None:
    opened = 0
    everyone = anyio.Event()

    async def open_and_wait() -> None:
        nonlocal opened
        async with PostgresStore(postgres_url):
            opened += 1
            if opened == 6:
                everyone.set()
            await everyone.wait()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(open_and_wait)
    async with PostgresStore(postgres_url) as reader:
        versions = await reader._fetch("SELECT version FROM schema_version ORDER BY version")
    assert [row[0] for row in versions] == list(range(1, len(PG_MIGRATIONS) + 1))


async def test_stores_in_different_schemas_do_not_see_each_other(
    postgres_schemas: pg.Schemas,
) -> None:
    async with (
        PostgresStore(postgres_schemas.new()) as one,
        PostgresStore(postgres_schemas.new()) as other,
    ):
        await run_into(one)
        await one.save_flow("ns", "f", 1, "id: f")
        assert (await one.search(ExecutionQuery())).total == 1
        assert (await other.search(ExecutionQuery())).total == 0
        assert await other.latest_flows() == []


async def test_postgres_group_commit_writes_many_events_in_few_transactions(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    original = _pg_sql.write_batch

    async def counting(connection: Any, batch: _pg_sql.Batch, *, idempotent: bool) -> None:
        batches.append(len(batch.events))
        await original(connection, batch, idempotent=idempotent)

    monkeypatch.setattr(_postgres, "write_batch", counting)
    runs = await run_into(MemoryStore(), count=20)
    async with PostgresStore(postgres_url, commit_interval=0.05) as store:

        async def one(events: list[Event]) -> None:
            for event in events:
                store.append(event)
            await store.flush()  # 20 writers flushing at once share transactions

        async with anyio.create_task_group() as tg:
            for _, events in runs:
                tg.start_soon(one, events)
        assert (await store.search(ExecutionQuery(size=100))).total == 20
    assert sum(batches) == sum(len(events) for _, events in runs)
    assert len(batches) <= 3


async def test_a_lost_connection_is_reconnected_and_nothing_is_lost(postgres_url: str) -> None:
    name = f"tiercel_lost_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={name}"

    async def kill_connections() -> int:
        async with await psycopg.AsyncConnection.connect(pg.base_url(), autocommit=True) as c:
            cursor = await c.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
            row = await cursor.fetchone()
            return int(row[0]) if row else 0

    runs = await run_into(MemoryStore(), count=2)
    async with PostgresStore(url, retry_backoff=0.05) as store:
        for event in runs[0][1]:
            store.append(event)
        await store.flush()
        assert await kill_connections() >= 1
        for event in runs[1][1]:
            store.append(event)
        with anyio.fail_after(10):
            await store.flush()  # the writer's connection was dead: the batch is written again
        assert await kill_connections() >= 1
        for execution, events in runs:
            assert [e.seq for e in await store.events(execution.id)] == [e.seq for e in events]
            stored = await store.get_execution(execution.id)
            assert stored is not None
            assert execution_json(stored) == execution_json(execution)


async def test_a_batch_retried_after_its_commit_is_not_written_twice(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    original = _pg_sql.write_batch

    async def commit_then_break(connection: Any, batch: _pg_sql.Batch, *, idempotent: bool) -> None:
        calls.append(idempotent)
        await original(connection, batch, idempotent=idempotent)
        if len(calls) == 1:
            raise psycopg.OperationalError("simulated: connection lost during COMMIT")

    monkeypatch.setattr(_postgres, "write_batch", commit_then_break)
    [(execution, events)] = await run_into(MemoryStore())
    async with PostgresStore(postgres_url, retry_backoff=0.01) as store:
        for event in events:
            store.append(event)
        await store.flush()
        assert calls == [False, True]  # COPY first, then INSERT ... ON CONFLICT DO NOTHING
        assert len(await store.events(execution.id)) == len(events)
        assert len(await store.logs(execution.id)) == len(
            await store.logs(execution.id, min_level="TRACE")
        )
        assert [m.value for m in await store.metrics(execution.id)] == [4.0]


async def test_writes_that_keep_failing_fail_flush_with_a_typed_error_then_recover(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = _pg_sql.write_batch

    async def broken(connection: Any, batch: _pg_sql.Batch, *, idempotent: bool) -> None:
        nonlocal calls
        calls += 1
        raise psycopg.OperationalError("simulated: server closed the connection unexpectedly")

    [(execution, events)] = await run_into(MemoryStore())
    async with PostgresStore(postgres_url, write_attempts=3, retry_backoff=0.01) as store:
        monkeypatch.setattr(_postgres, "write_batch", broken)
        for event in events:
            store.append(event)
        with anyio.fail_after(10), pytest.raises(StoreWriteError) as caught:
            await store.flush()
        assert calls == 3
        message = str(caught.value)
        assert f"could not write {len(events)} events" in message
        assert "after 3 attempts: simulated: server closed the connection" in message
        assert (await store.search(ExecutionQuery())).total == 0
        monkeypatch.setattr(_postgres, "write_batch", original)
        with anyio.fail_after(10):
            await store.flush()  # the batch was kept: the next flush writes it
        assert len(await store.events(execution.id)) == len(events)


async def test_an_error_that_retrying_cannot_mend_fails_flush_at_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def refused(connection: Any, batch: _pg_sql.Batch, *, idempotent: bool) -> None:
        nonlocal calls
        calls += 1
        raise psycopg.errors.DataError("simulated: invalid input")

    monkeypatch.setattr(_postgres, "write_batch", refused)
    store = PostgresStore(postgres_url, retry_pause=0.01)
    await store.open()
    [(_, events)] = await run_into(MemoryStore())
    for event in events:
        store.append(event)
    for _ in range(2):  # each flush tries again, and fails again
        with anyio.fail_after(10), pytest.raises(StoreWriteError, match="at the first attempt"):
            await store.flush()
    with pytest.raises(StoreWriteError):  # (open and close in one cancel scope, as anyio wants)
        await store.close()  # closing cannot flush either: it says so, and still closes
    assert store._pool is None
    assert calls >= 3


async def test_text_postgresql_refuses_is_stored_cleaned(postgres_url: str) -> None:
    [(execution, events)] = await run_into(MemoryStore())
    last = events[-1]
    now = datetime.now(UTC)
    odd = 'nul\x00, a quote " and unicode \u00e9'
    async with PostgresStore(postgres_url) as store:
        for event in events:
            store.append(event)
        store.append(
            LogEmitted(
                execution_id=execution.id, seq=last.seq + 1, time=now, level="INFO", message=odd
            )
        )
        store.append(
            LabelsChanged(
                execution_id=execution.id,
                seq=last.seq + 2,
                time=now,
                labels=[("team", "data"), ("odd", odd)],
            )
        )
        await store.flush()
        [log] = [log for log in await store.logs(execution.id) if log.seq == last.seq + 1]
        assert log.message == 'nul\ufffd, a quote " and unicode \u00e9'
        [logged, _] = await store.events(execution.id, after_seq=last.seq)
        assert isinstance(logged, LogEmitted)
        assert logged.message == odd  # events are kept as they were encoded
        assert (await store.search(ExecutionQuery(labels={"team": "data"}))).total == 1


async def test_postgres_queries_use_indexes(postgres_url: str) -> None:
    """Every query run per event, per execution or per search can use an index."""
    async with PostgresStore(postgres_url) as store:
        await run_into(store)
    now = datetime.now(UTC)
    searches = [
        ExecutionQuery(),
        ExecutionQuery(namespace="company"),
        ExecutionQuery(namespace="company", flow_id="sample"),
        ExecutionQuery(flow_id="sample"),
        ExecutionQuery(states=[State.RUNNING, State.PAUSED]),
        ExecutionQuery(labels={"team": "data"}),
        ExecutionQuery(started_after=now),
        ExecutionQuery(started_before=now),
        ExecutionQuery(ended_after=now),
    ]
    statements: list[tuple[str, list[Any]]] = []
    for query in searches:
        count, page, args = _pg_sql.search_sql(query)
        statements += [(count, args), (page, [*args, 25, 0])]
    ids, texts, stamps = ["a", "b"], ["RUNNING", "SUCCESS"], [now, None]
    statements += [
        (_pg_sql.EVENTS, ["a", 0]),
        (_pg_sql.DOCUMENTS, [ids, ids]),
        (_pg_sql.METRICS, ["a"]),
        (_pg_sql.logs_sql("r", 1, "WARN")[0], ["a", "r", 1, 30]),
        (_pg_sql.metric_aggregate_sql(now, now)[0], ["ns", "f", "rows", now, now]),
        (_pg_sql.UNFINISHED, [texts]),
        (_pg_sql.ENDED_BEFORE, [now, texts]),
        (_pg_sql.ENDED_SINCE, [now, now, "a", texts, 100]),
        (_pg_sql.UPDATE_STATES, [ids, texts, stamps]),
        (_pg_sql.UPDATE_LABELS, [ids, ["{}", "{}"]]),
        (
            _pg_sql.INSERT_METRICS,
            [ids, [1, 2], ids, [1, 1], ids, ids, [1.0, 2.0], ["{}", "{}"], [now, now]],
        ),
        (_pg_sql.UPSERT_SNAPSHOTS, [ids, [1, 2], [b"{}", b"{}"]]),
        ("SELECT value, expires FROM kv WHERE namespace = %s AND key = %s", ["ns", "k"]),
        ("SELECT revision FROM flows WHERE namespace = %s AND id = %s", ["ns", "f"]),
    ]
    async with await psycopg.AsyncConnection.connect(pg.base_url(), autocommit=True) as c:
        schema = parse_qs(urlsplit(postgres_url).query)["schema"][0]
        await c.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        await c.execute("SET enable_seqscan = off")  # a sequential scan now means: no index fits
        for statement, args in statements:
            cursor = await c.execute(f"EXPLAIN {statement}", args, prepare=False)
            plan = "\n".join(str(row[0]) for row in await cursor.fetchall())
            assert "Seq Scan" not in plan, f"{statement}\n{plan}"


CRASHING = """
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


async def test_a_runtime_on_postgres_recovers_after_a_crash(postgres_url: str) -> None:
    clock = VirtualClock(autojump=False)
    execution_id = ""
    with anyio.CancelScope() as scope:
        async with Runtime(store=PostgresStore(postgres_url), clock=clock) as runtime:
            handle = await runtime.start(CRASHING)
            execution_id = handle.id
            with anyio.fail_after(10):
                async for _ in handle.changes():
                    if any(
                        t.task_id == "slow" and t.state.current is State.RUNNING
                        for t in handle.execution.task_run_list
                    ):
                        break
            await runtime.store.flush()
            scope.cancel()  # the process "dies" with the attempt running
            await anyio.sleep_forever()
    second = VirtualClock(start=clock.now())
    async with Runtime(store=PostgresStore(postgres_url), clock=second) as runtime:
        with anyio.fail_after(10):
            execution = await runtime.handle(execution_id).result()
    assert execution.state.current is State.SUCCESS
    _, slow, last = execution.task_run_list
    assert [a.state.current for a in slow.attempts or []] == [State.FAILED, State.SUCCESS]
    assert last.outputs == {"value": "kept"}
    async with PostgresStore(postgres_url) as store:
        stored = await store.get_execution(execution_id)
        assert await store.unfinished() == []
    assert stored is not None
    assert execution_json(stored) == execution_json(execution)


async def test_every_runtime_gets_the_store_tiercel_test_store_names() -> None:
    """The harness of ``scripts/test``: engine tests really run on the store it names."""
    kinds: dict[str, type[Store]] = {
        "memory": MemoryStore,
        "sqlite": SqliteStore,
        "postgres": PostgresStore,
    }
    expected = kinds[os.environ.get("TIERCEL_TEST_STORE") or "memory"]
    async with Runtime() as one, Runtime() as other:
        assert {type(one.store), type(other.store)} == {expected}
        execution = await one.run(FLOW)
        assert await one.store.get_execution(execution.id) is not None
        assert await other.store.get_execution(execution.id) is None  # a fresh store each
