"""The SQLite store: the embedded default. One file, WAL mode, group-committed writes.

Events from every execution are queued and written by one writer task, in batches: one
transaction per batch, committed at most ``commit_interval`` seconds after the first event
of the batch was queued, and at once when someone waits in ``flush``. SQLite runs in a
worker thread (one for writes, one for reads), so the event loop never blocks on disk.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import msgspec

from runtime.model._events import (
    Event,
    ExecutionCreated,
    ExecutionEnded,
    ExecutionStateChanged,
    LabelsChanged,
    LogEmitted,
    MetricEmitted,
)
from runtime.model._execution import Execution, execution_json
from runtime.model._states import TERMINAL
from runtime.store._base import (
    EVENT_DECODER,
    EVENT_ENCODER,
    LEVELS,
    SNAPSHOT_DECODER,
    ExecutionQuery,
    LogEntry,
    MetricAggregate,
    MetricEntry,
    Page,
    Store,
    StoredFlow,
    aggregate,
)
from runtime.store._migrations import migrate

R = TypeVar("R")
_JSON = msgspec.json.Encoder()
_TERMINAL_NAMES = tuple(state.value for state in TERMINAL)


def _iso(value: datetime) -> str:
    """Timestamps as UTC ISO text, so that text order is time order."""
    return value.astimezone(UTC).isoformat()


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    return _JSON.encode(dict(labels)).decode()


class SqliteStore(Store):
    """A store in one SQLite file (created on first use, with its folder)."""

    durable = True

    def __init__(
        self, path: Path, *, commit_interval: float = 0.005, max_batch: int = 20_000
    ) -> None:
        self.path = path
        self.commit_interval = commit_interval
        self.max_batch = max_batch
        self._pending: list[Event] = []
        self._snapshots: dict[str, tuple[bytes, int]] = {}
        self._queued = 0
        self._written = 0
        self._wakeup = anyio.Event()
        self._progress = anyio.Event()
        self._writer_error: BaseException | None = None
        self._flows_of: dict[str, tuple[str, str]] = {}
        self._write_lock = anyio.CapacityLimiter(1)
        self._read_lock = anyio.CapacityLimiter(1)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._task_group: Any = None
        self._closing = False
        self._flushers = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        await anyio.Path(self.path.parent).mkdir(parents=True, exist_ok=True)
        self._writer = await anyio.to_thread.run_sync(self._connect)
        await self._on_writer(migrate)
        self._reader = await anyio.to_thread.run_sync(self._connect)
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._write_loop)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=5000")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    async def close(self) -> None:
        if self._task_group is None:
            return
        try:
            await self.flush()
        finally:
            self._closing = True
            self._wakeup.set()
            task_group, self._task_group = self._task_group, None
            await task_group.__aexit__(None, None, None)
            for connection in (self._writer, self._reader):
                if connection is not None:
                    await anyio.to_thread.run_sync(connection.close)
            self._writer = self._reader = None

    async def _on_writer(self, call: Callable[[sqlite3.Connection], R]) -> R:
        assert self._writer is not None
        writer = self._writer
        return await anyio.to_thread.run_sync(call, writer, limiter=self._write_lock)

    async def _on_reader(self, call: Callable[[sqlite3.Connection], R]) -> R:
        assert self._reader is not None
        reader = self._reader
        return await anyio.to_thread.run_sync(call, reader, limiter=self._read_lock)

    # -- writing ------------------------------------------------------------------------

    def append(self, event: Event) -> None:
        self._pending.append(event)
        self._queued += 1
        self._wakeup.set()

    def snapshot(self, execution: Execution, seq: int) -> None:
        if execution.id not in self._snapshots:
            self._queued += 1  # a newer snapshot replaces a pending one: one row to write
        self._snapshots[execution.id] = (execution_json(execution), seq)
        self._wakeup.set()

    async def flush(self) -> None:
        target = self._queued
        self._flushers += 1
        try:
            while self._written < target:
                if self._writer_error is not None:
                    raise RuntimeError("the store's writer failed") from self._writer_error
                self._wakeup.set()
                progress = self._progress
                await progress.wait()
        finally:
            self._flushers -= 1

    async def _write_loop(self) -> None:
        while True:
            if not self._pending and not self._snapshots:
                if self._closing:
                    return
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            if (
                self.commit_interval > 0
                and len(self._pending) < self.max_batch
                and not self._flushers
            ):
                # Nobody waits: gather a larger group. Someone waits: commit now (what
                # arrives meanwhile forms the next group while this one is written).
                with anyio.move_on_after(self.commit_interval):
                    while not self._flushers:
                        self._wakeup = anyio.Event()
                        await self._wakeup.wait()
            events, self._pending = self._pending, []
            snapshots, self._snapshots = self._snapshots, {}
            count = len(events) + len(snapshots)
            try:
                rows = self._rows(events, snapshots)
                await self._on_writer(functools.partial(_write_batch, batch=rows))
            except BaseException as exc:
                self._writer_error = exc
                self._progress.set()
                raise
            self._written += count
            progress, self._progress = self._progress, anyio.Event()
            progress.set()

    def _rows(self, events: list[Event], snapshots: dict[str, tuple[bytes, int]]) -> _Batch:
        batch = _Batch()
        for event in events:
            execution_id = event.execution_id
            batch.events.append((execution_id, event.seq, EVENT_ENCODER.encode(event)))
            kind = type(event)
            if kind is ExecutionCreated:
                assert isinstance(event, ExecutionCreated)
                self._flows_of[execution_id] = (event.namespace, event.flow_id)
                batch.created.append(
                    (
                        execution_id,
                        event.namespace,
                        event.flow_id,
                        event.flow_revision,
                        "CREATED",
                        _iso(event.time),
                        _labels(event.labels),
                        event.parent_id,
                    )
                )
            elif kind is ExecutionStateChanged or kind is ExecutionEnded:
                state = event.state.value  # type: ignore[attr-defined]
                ended = _iso(event.time) if state in _TERMINAL_NAMES else None
                batch.states.append((state, ended, execution_id))
            elif kind is LabelsChanged:
                batch.labels.append((_labels(event.labels), execution_id))  # type: ignore[attr-defined]
            elif kind is LogEmitted:
                assert isinstance(event, LogEmitted)
                batch.logs.append(
                    (
                        execution_id,
                        event.seq,
                        event.task_run_id,
                        event.task_id,
                        event.attempt,
                        event.level,
                        LEVELS.get(event.level, 0),
                        _iso(event.time),
                        event.message,
                    )
                )
            elif kind is MetricEmitted:
                assert isinstance(event, MetricEmitted)
                namespace, flow_id = self._flows_of.get(execution_id, ("", ""))
                batch.metrics.append(
                    (
                        execution_id,
                        event.seq,
                        namespace,
                        flow_id,
                        event.task_run_id,
                        event.attempt,
                        event.name,
                        event.type,
                        event.value,
                        _JSON.encode(event.tags).decode(),
                        _iso(event.time),
                    )
                )
        batch.snapshots = [
            (body, seq, execution_id) for execution_id, (body, seq) in snapshots.items()
        ]
        return batch

    # -- reading ------------------------------------------------------------------------

    async def events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        rows = await self._on_reader(
            lambda c: c.execute(
                "SELECT body FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq",
                (execution_id, after_seq),
            ).fetchall()
        )
        return [EVENT_DECODER.decode(row[0]) for row in rows]

    async def _latest_snapshot(self, execution_id: str) -> tuple[Execution, int] | None:
        row = await self._on_reader(
            lambda c: c.execute(
                "SELECT snapshot, snapshot_seq FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
        )
        if row is None or row[0] is None:
            return None
        return SNAPSHOT_DECODER.decode(row[0]), int(row[1])

    async def search(self, query: ExecutionQuery) -> Page[Execution]:
        where, args = _where(query)
        size = max(query.size, 1)
        offset = (max(query.page, 1) - 1) * size

        def run(c: sqlite3.Connection) -> tuple[int, list[str]]:
            total = c.execute(f"SELECT COUNT(*) FROM executions {where}", args).fetchone()[0]
            ids = c.execute(
                f"SELECT id FROM executions {where} "
                "ORDER BY start_date DESC, rowid DESC LIMIT ? OFFSET ?",
                [*args, size, offset],
            ).fetchall()
            return int(total), [row[0] for row in ids]

        total, ids = await self._on_reader(run)
        items = [await self.get_execution(execution_id) for execution_id in ids]
        return Page([e for e in items if e is not None], total)

    async def logs(
        self,
        execution_id: str,
        *,
        task_run_id: str | None = None,
        attempt: int | None = None,
        min_level: str | None = None,
    ) -> list[LogEntry]:
        sql = (
            "SELECT seq, task_run_id, task_id, attempt, level, timestamp, message "
            "FROM logs WHERE execution_id = ?"
        )
        args: list[Any] = [execution_id]
        if task_run_id is not None:
            sql += " AND task_run_id = ?"
            args.append(task_run_id)
        if attempt is not None:
            sql += " AND attempt = ?"
            args.append(attempt)
        if min_level is not None:
            sql += " AND level_num >= ?"
            args.append(LEVELS.get(min_level.upper(), 0))
        rows = await self._on_reader(lambda c: c.execute(sql + " ORDER BY seq", args).fetchall())
        return [
            LogEntry(
                execution_id=execution_id,
                seq=seq,
                task_run_id=run_id,
                task_id=task_id,
                attempt_number=number,
                level=level,
                timestamp=datetime.fromisoformat(stamp),
                message=message,
            )
            for seq, run_id, task_id, number, level, stamp, message in rows
        ]

    async def metrics(self, execution_id: str) -> list[MetricEntry]:
        rows = await self._on_reader(
            lambda c: c.execute(
                "SELECT task_run_id, attempt, name, type, value, tags, timestamp FROM metrics "
                "WHERE execution_id = ? ORDER BY seq",
                (execution_id,),
            ).fetchall()
        )
        return [
            MetricEntry(
                execution_id=execution_id,
                task_run_id=run_id,
                attempt_number=number,
                name=name,
                type=kind,
                value=value,
                tags=msgspec.json.decode(tags),
                timestamp=datetime.fromisoformat(stamp),
            )
            for run_id, number, name, kind, value, tags, stamp in rows
        ]

    async def metric_aggregate(
        self,
        namespace: str,
        flow_id: str,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MetricAggregate:
        sql = "SELECT value FROM metrics WHERE namespace = ? AND flow_id = ? AND name = ?"
        args: list[Any] = [namespace, flow_id, name]
        if start is not None:
            sql += " AND timestamp >= ?"
            args.append(_iso(start))
        if end is not None:
            sql += " AND timestamp < ?"
            args.append(_iso(end))
        rows = await self._on_reader(lambda c: c.execute(sql, args).fetchall())
        return aggregate(name, [row[0] for row in rows])

    async def ended_since(
        self, after: datetime, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, datetime]]:
        marks = ",".join("?" * len(_TERMINAL_NAMES))
        at = _iso(after)
        rows = await self._on_reader(
            lambda c: c.execute(
                "SELECT id, end_date FROM executions WHERE end_date >= ? "
                f"AND (end_date > ? OR id > ?) AND state IN ({marks}) "
                "ORDER BY end_date, id LIMIT ?",
                [at, at, after_id, *_TERMINAL_NAMES, limit],
            ).fetchall()
        )
        return [(str(row[0]), datetime.fromisoformat(row[1])) for row in rows]

    async def unfinished(self) -> list[str]:
        marks = ",".join("?" * len(_TERMINAL_NAMES))
        rows = await self._on_reader(
            lambda c: c.execute(
                f"SELECT id FROM executions WHERE state NOT IN ({marks}) ORDER BY start_date",
                _TERMINAL_NAMES,
            ).fetchall()
        )
        return [row[0] for row in rows]

    # -- flows --------------------------------------------------------------------------

    async def save_flow(self, namespace: str, flow_id: str, revision: int, source: str) -> None:
        now = _iso(datetime.now(UTC))

        def run(c: sqlite3.Connection) -> None:
            with _transaction(c):  # the revision and the revival together
                c.execute(
                    "INSERT OR IGNORE INTO flows (namespace, id, revision, source, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (namespace, flow_id, revision, source, now),
                )
                c.execute(
                    "DELETE FROM deleted_flows WHERE namespace = ? AND id = ?",
                    (namespace, flow_id),
                )

        await self._on_writer(run)

    async def flow_revisions(self, namespace: str, flow_id: str) -> list[StoredFlow]:
        rows = await self._on_reader(
            lambda c: c.execute(
                "SELECT revision, source, created FROM flows WHERE namespace = ? AND id = ? "
                "ORDER BY revision",
                (namespace, flow_id),
            ).fetchall()
        )
        return [
            StoredFlow(
                namespace=namespace,
                id=flow_id,
                revision=revision,
                source=source,
                created=datetime.fromisoformat(created),
            )
            for revision, source, created in rows
        ]

    async def latest_flows(self) -> list[StoredFlow]:
        rows = await self._on_reader(
            lambda c: c.execute(
                "SELECT f.namespace, f.id, f.revision, f.source, f.created FROM flows f "
                "JOIN (SELECT namespace, id, MAX(revision) AS revision FROM flows "
                "GROUP BY namespace, id) latest USING (namespace, id, revision) "
                "WHERE NOT EXISTS (SELECT 1 FROM deleted_flows d "
                "WHERE d.namespace = f.namespace AND d.id = f.id) "
                "ORDER BY f.namespace, f.id"
            ).fetchall()
        )
        return [
            StoredFlow(
                namespace=namespace,
                id=flow_id,
                revision=revision,
                source=source,
                created=datetime.fromisoformat(created),
            )
            for namespace, flow_id, revision, source, created in rows
        ]

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        def run(c: sqlite3.Connection) -> bool:
            with _transaction(c):
                exists = c.execute(
                    "SELECT 1 FROM flows WHERE namespace = ? AND id = ? LIMIT 1",
                    (namespace, flow_id),
                ).fetchone()
                if exists is None:
                    return False
                cursor = c.execute(
                    "INSERT OR IGNORE INTO deleted_flows (namespace, id) VALUES (?, ?)",
                    (namespace, flow_id),
                )
                return bool(cursor.rowcount)

        return await self._on_writer(run)

    # -- retention ----------------------------------------------------------------------

    async def delete_execution(self, execution_id: str) -> bool:
        await self.flush()
        return await self._on_writer(lambda c: _delete(c, [execution_id])) > 0

    async def purge(self, ended_before: datetime) -> list[tuple[str, str, str]]:
        await self.flush()
        marks = ",".join("?" * len(_TERMINAL_NAMES))
        rows: list[tuple[str, str, str]] = await self._on_reader(
            lambda c: c.execute(
                f"SELECT namespace, flow_id, id FROM executions WHERE state IN ({marks}) "
                "AND end_date < ?",
                [*_TERMINAL_NAMES, _iso(ended_before)],
            ).fetchall()
        )
        if rows:
            await self._on_writer(lambda c: _delete(c, [row[2] for row in rows]))
        return [tuple(row) for row in rows]  # type: ignore[misc]

    # -- key-value documents ------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str, now: datetime) -> Any | None:
        row = await self._on_reader(
            lambda c: c.execute(
                "SELECT value, expires FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        )
        if row is None:
            return None
        value, expires = row
        if expires is not None and _iso(now) >= expires:
            await self.kv_delete(namespace, key)
            return None
        return msgspec.json.decode(value)

    async def kv_put(self, namespace: str, key: str, value: Any, expires: datetime | None) -> None:
        body = _JSON.encode(value).decode()
        stamp = _iso(expires) if expires is not None else None
        await self._on_writer(
            lambda c: c.execute(
                "INSERT INTO kv (namespace, key, value, expires) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
                "expires = excluded.expires",
                (namespace, key, body, stamp),
            )
        )

    async def kv_delete(self, namespace: str, key: str) -> bool:
        cursor = await self._on_writer(
            lambda c: c.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        )
        return bool(cursor.rowcount)


class _Batch:
    """Rows of one group commit."""

    __slots__ = ("created", "events", "labels", "logs", "metrics", "snapshots", "states")

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.created: list[tuple[Any, ...]] = []
        self.states: list[tuple[Any, ...]] = []
        self.labels: list[tuple[Any, ...]] = []
        self.logs: list[tuple[Any, ...]] = []
        self.metrics: list[tuple[Any, ...]] = []
        self.snapshots: list[tuple[Any, ...]] = []


def _write_batch(connection: sqlite3.Connection, batch: _Batch) -> None:
    """One transaction for the whole batch (runs in the writer thread)."""
    connection.execute("BEGIN")
    try:
        connection.executemany(
            "INSERT INTO executions (id, namespace, flow_id, flow_revision, state, start_date, "
            "labels, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            batch.created,
        )
        connection.executemany(
            "INSERT OR IGNORE INTO events (execution_id, seq, body) VALUES (?, ?, ?)", batch.events
        )
        connection.executemany(
            "UPDATE executions SET state = ?, end_date = ? WHERE id = ?", batch.states
        )
        connection.executemany("UPDATE executions SET labels = ? WHERE id = ?", batch.labels)
        connection.executemany(
            "INSERT OR IGNORE INTO logs (execution_id, seq, task_run_id, task_id, attempt, level, "
            "level_num, timestamp, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch.logs,
        )
        connection.executemany(
            "INSERT OR IGNORE INTO metrics (execution_id, seq, namespace, flow_id, task_run_id, "
            "attempt, name, type, value, tags, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch.metrics,
        )
        connection.executemany(
            "UPDATE executions SET snapshot = ?1, snapshot_seq = ?2 WHERE id = ?3 "
            "AND snapshot_seq <= ?2",
            batch.snapshots,
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _delete(connection: sqlite3.Connection, ids: list[str]) -> int:
    connection.execute("BEGIN")
    try:
        deleted = 0
        for execution_id in ids:
            for table in ("events", "logs", "metrics"):
                connection.execute(f"DELETE FROM {table} WHERE execution_id = ?", (execution_id,))
            deleted += connection.execute(
                "DELETE FROM executions WHERE id = ?", (execution_id,)
            ).rowcount
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return deleted


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _where(query: ExecutionQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.namespace is not None:
        clauses.append("(namespace = ? OR namespace LIKE ? ESCAPE '\\')")
        escaped = query.namespace.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args += [query.namespace, escaped + ".%"]
    if query.flow_id is not None:
        clauses.append("flow_id = ?")
        args.append(query.flow_id)
    if query.states:
        clauses.append(f"state IN ({','.join('?' * len(query.states))})")
        args += [state.value for state in query.states]
    if query.started_after is not None:
        clauses.append("start_date >= ?")
        args.append(_iso(query.started_after))
    if query.started_before is not None:
        clauses.append("start_date < ?")
        args.append(_iso(query.started_before))
    if query.ended_after is not None:
        clauses.append(f"end_date >= ? AND state IN ({','.join('?' * len(_TERMINAL_NAMES))})")
        args += [_iso(query.ended_after), *_TERMINAL_NAMES]
    for key, value in (query.labels or {}).items():
        clauses.append("json_extract(labels, ?) = ?")
        args += ['$."' + key.replace('"', '""') + '"', value]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args
