"""The PostgreSQL store: for several processes on one database, or a database kept apart.

Writes are group-committed as in the SQLite store: ``append`` and ``snapshot`` only queue,
and one writer task writes everything pending in one transaction per batch, with the
projections (executions summary, logs, metrics) in the same transaction as the events.
Events and logs go in by binary ``COPY`` (the fastest way in, measured against pipelined
``executemany`` and ``unnest`` inserts); everything else by one ``unnest`` statement per
table, sent together in pipeline mode. A batch that fails on a lost connection is written
again, idempotently (``INSERT ... ON CONFLICT DO NOTHING`` instead of ``COPY``), a few
times with back-off; then ``flush`` raises :class:`StoreWriteError`.

The URL is described in :mod:`runtime.store._pg_url`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import msgspec
import psycopg
import structlog
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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
)
from runtime.store._errors import StoreUnavailableError, StoreWriteError
from runtime.store._pg_migrations import migrate
from runtime.store._pg_sql import (
    DOCUMENTS,
    ENDED_BEFORE,
    ENDED_SINCE,
    EVENTS,
    LATEST_FLOWS,
    METRICS,
    TERMINAL_NAMES,
    UNFINISHED,
    Batch,
    Connection,
    Fence,
    delete_executions,
    document,
    json_text,
    logs_sql,
    metric_aggregate_sql,
    pg_text,
    search_sql,
    utc,
    write_batch,
)
from runtime.store._pg_url import PostgresTarget, parse_postgres_url

__all__ = ("PostgresStore", "PostgresTarget", "parse_postgres_url")

R = TypeVar("R")
_JSON = msgspec.json.Encoder()
log = structlog.get_logger("tiercel.store")


class PostgresStore(Store):
    """A store in a PostgreSQL database (15 or later), reached through a connection pool.

    ``commit_interval`` and ``max_batch`` shape group commits as in :class:`SqliteStore`.
    A batch is tried ``write_attempts`` times on connection errors, waiting
    ``retry_backoff`` seconds (doubling) between tries, each try given ``attempt_timeout``
    seconds; after a failed batch the writer waits for the next ``flush`` (or
    ``retry_pause`` seconds) to try again.

    :raises StoreUrlError: (from the constructor) for a URL that cannot be used.
    """

    durable = True

    def __init__(
        self,
        url: str,
        *,
        commit_interval: float = 0.005,
        max_batch: int = 20_000,
        write_attempts: int = 5,
        retry_backoff: float = 0.1,
        attempt_timeout: float = 30.0,
        retry_pause: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.target = parse_postgres_url(url)
        self.commit_interval = commit_interval
        self.max_batch = max_batch
        self.write_attempts = write_attempts
        self.retry_backoff = retry_backoff
        self.attempt_timeout = attempt_timeout
        self.retry_pause = retry_pause
        self.connect_timeout = connect_timeout
        self._pending: list[Event] = []
        self._snapshots: dict[str, tuple[bytes, int]] = {}
        self._queued = 0
        self._written = 0
        self._round = 0
        self._failed_round = -1
        self._failure: BaseException | None = None
        self._wakeup = anyio.Event()
        self._retry = anyio.Event()
        self._progress = anyio.Event()
        self._flushers = 0
        self._closing = False
        self._pool: AsyncConnectionPool[Connection] | None = None
        self.fence: Fence | None = None
        """A cluster executor's leases: events of executions it does not own are not
        written (see runtime.cluster)."""
        self._task_group: Any = None
        self._writer_scope = anyio.CancelScope()

    def __repr__(self) -> str:
        return f"PostgresStore({self.target.display!r})"

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create or migrate the schema, open the pool and start the writer.

        :raises StoreUnavailableError: if the database cannot be reached.
        :raises SchemaTooNewError: if the schema was written by a newer Tiercel.
        """
        if self._pool is not None:
            return
        connection = await self._connect()
        try:
            await migrate(connection, self.target.schema)
        finally:
            await connection.close()
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.target.conninfo,
            min_size=self.target.min_size,
            max_size=self.target.max_size,
            kwargs=self._connection_options(),
            configure=self._configure,
            open=False,
            timeout=self.connect_timeout,
            name=f"tiercel:{self.target.schema}",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailableError(
                f"cannot open connections to PostgreSQL at {self.target.where}: {exc}"
            ) from exc
        self._pool = pool
        self._closing = False
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._writer_scope = anyio.CancelScope()
        self._task_group.start_soon(self._write_loop)

    def _connection_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"autocommit": True}
        given = conninfo_to_dict(self.target.conninfo)
        if "connect_timeout" not in given:
            options["connect_timeout"] = max(1, round(self.connect_timeout))
        if "application_name" not in given:
            options["application_name"] = "tiercel"
        return options

    async def _connect(self) -> Connection:
        try:
            return await AsyncConnection.connect(self.target.conninfo, **self._connection_options())
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())
            raise StoreUnavailableError(
                f"cannot connect to PostgreSQL at {self.target.where} "
                f"({self.target.display}): {reason}"
            ) from exc

    async def _configure(self, connection: Connection) -> None:
        await connection.execute(
            sql.SQL("SET search_path TO {}; SET TIME ZONE 'UTC'").format(
                sql.Identifier(self.target.schema)
            )
        )

    async def close(self) -> None:
        """Flush what is pending, stop the writer and close the pool (safe to call twice).

        :raises StoreWriteError: if what was pending could not be written.
        """
        if self._task_group is None:
            return
        flushed = False
        try:
            await self.flush()
            flushed = True
        finally:
            self._closing = True
            task_group, self._task_group = self._task_group, None
            if not flushed:
                self._writer_scope.cancel()  # what is pending cannot be written: give up
            self._wakeup.set()
            self._retry.set()
            try:
                await task_group.__aexit__(None, None, None)
            finally:
                pool, self._pool = self._pool, None
                if pool is not None:
                    # Shielded: a runtime stopped by cancellation still closes its connections.
                    with anyio.move_on_after(self.connect_timeout, shield=True):
                        await pool.close()

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
        """Return once everything appended so far is committed.

        :raises StoreWriteError: if a batch tried after this call began failed (what is
            pending stays queued and is tried again by the next ``flush``).
        :raises RuntimeError: if the store is not open and something is pending.
        """
        target = self._queued
        entered = self._round
        self._flushers += 1
        try:
            while self._written < target:
                failure = self._failure
                if failure is not None and self._failed_round > entered:
                    raise StoreWriteError(*failure.args) from failure.__cause__
                if self._task_group is None:
                    raise RuntimeError(f"{self!r} is not open: nothing can be written")
                self._wakeup.set()
                self._retry.set()
                progress = self._progress
                await progress.wait()
        finally:
            self._flushers -= 1

    def _signal_progress(self) -> None:
        progress, self._progress = self._progress, anyio.Event()
        progress.set()

    async def _write_loop(self) -> None:
        with self._writer_scope:
            await self._write_until_closed()

    async def _write_until_closed(self) -> None:
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
                and not self._closing
            ):
                # Nobody waits: gather a larger group. Someone waits: commit now (what
                # arrives meanwhile forms the next group while this one is written).
                with anyio.move_on_after(self.commit_interval):
                    while not self._flushers:
                        self._wakeup = anyio.Event()
                        await self._wakeup.wait()
            # Items leave the queue only once committed: a failed batch is tried again.
            events = self._pending[:]
            snapshots = dict(self._snapshots)
            self._round += 1
            try:
                await self._write_round(self._batch(events, snapshots))
            except StoreWriteError as exc:
                log.warning("store write failed; kept for the next flush", error=str(exc))
                self._failure = exc
                self._failed_round = self._round
                self._signal_progress()
                if self._closing:
                    return
                self._retry = anyio.Event()
                with anyio.move_on_after(self.retry_pause):
                    await self._retry.wait()
                continue
            del self._pending[: len(events)]
            written = len(events)
            for execution_id, item in snapshots.items():
                if self._snapshots.get(execution_id) is item:
                    del self._snapshots[execution_id]
                    written += 1
            self._written += written
            self._failure = None
            self._signal_progress()

    async def _write_round(self, batch: Batch) -> None:
        """Write a batch, trying again on connection errors.

        :raises StoreWriteError: once it has failed ``write_attempts`` times, or at once
            for an error that trying again cannot mend.
        """
        assert self._pool is not None
        pool = self._pool
        delay = self.retry_backoff
        idempotent = False
        attempt = 0
        while True:
            attempt += 1
            try:
                with anyio.fail_after(self.attempt_timeout):
                    async with pool.connection() as connection:
                        if self.fence is None:
                            lost: set[str] = set()
                            await write_batch(connection, batch, idempotent=idempotent)
                        else:
                            lost = await write_batch(
                                connection, batch, idempotent=idempotent, fence=self.fence
                            )
                    if lost and self.fence is not None:
                        self.fence.lost(lost)
            except psycopg.errors.UniqueViolation as exc:
                # Rows stored already (appended twice, or a batch committed just before
                # its connection broke): the ON CONFLICT path skips them.
                if idempotent or attempt >= self.write_attempts:
                    raise self._write_error(batch, attempt, exc) from exc
                idempotent = True
            except (
                psycopg.OperationalError,
                psycopg.errors.IdleInTransactionSessionTimeout,  # see apply_fence
                TimeoutError,
            ) as exc:
                if attempt >= self.write_attempts:
                    raise self._write_error(batch, attempt, exc) from exc
                idempotent = True
                await anyio.sleep(delay)
                delay *= 2
            except Exception as exc:  # a value PostgreSQL refuses, say: trying again won't help
                raise self._write_error(batch, attempt, exc) from exc
            else:
                return

    def _write_error(self, batch: Batch, attempts: int, exc: BaseException) -> StoreWriteError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if not attempts:
            return StoreWriteError(f"could not encode what was appended: {reason}")
        tries = f"after {attempts} attempts" if attempts > 1 else "at the first attempt"
        return StoreWriteError(
            f"could not write {len(batch.events)} events and {len(batch.snapshots)} "
            f"snapshots to PostgreSQL at {self.target.where} {tries}: {reason}"
        )

    def _batch(self, events: list[Event], snapshots: dict[str, tuple[bytes, int]]) -> Batch:
        try:
            return self._rows(events, snapshots)
        except Exception as exc:  # an event msgspec cannot encode, say
            raise self._write_error(Batch(), 0, exc) from exc

    def _rows(self, events: list[Event], snapshots: dict[str, tuple[bytes, int]]) -> Batch:
        batch = Batch()
        for event in events:
            execution_id = event.execution_id
            batch.events.append((execution_id, event.seq, EVENT_ENCODER.encode(event)))
            kind = type(event)
            if kind is ExecutionCreated:
                assert isinstance(event, ExecutionCreated)
                batch.created.append(
                    (
                        execution_id,
                        event.namespace,
                        event.flow_id,
                        event.flow_revision,
                        "CREATED",
                        utc(event.time),
                        json_text(dict(event.labels)),
                        event.parent_id,
                    )
                )
            elif kind is ExecutionStateChanged or kind is ExecutionEnded:
                state = event.state  # type: ignore[attr-defined]
                ended = utc(event.time) if state in TERMINAL else None
                batch.states[execution_id] = (state.value, ended)
            elif kind is LabelsChanged:
                batch.labels[execution_id] = json_text(dict(event.labels))  # type: ignore[attr-defined]
            elif kind is LogEmitted:
                assert isinstance(event, LogEmitted)
                batch.logs.append(
                    (
                        execution_id,
                        event.seq,
                        event.task_run_id,
                        None if event.task_id is None else pg_text(event.task_id),
                        event.attempt,
                        pg_text(event.level),
                        LEVELS.get(event.level, 0),
                        utc(event.time),
                        pg_text(event.message),
                    )
                )
            elif kind is MetricEmitted:
                assert isinstance(event, MetricEmitted)
                batch.metrics.append(
                    (
                        execution_id,
                        event.seq,
                        event.task_run_id,
                        event.attempt,
                        pg_text(event.name),
                        pg_text(event.type),
                        float(event.value),
                        json_text(event.tags),
                        utc(event.time),
                    )
                )
        batch.snapshots = [
            (execution_id, seq, body) for execution_id, (body, seq) in snapshots.items()
        ]
        return batch

    # -- running statements -------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise RuntimeError(f"{self!r} is not open")
        try:
            async with self._pool.connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise StoreUnavailableError(
                f"no connection to PostgreSQL at {self.target.where} within "
                f"{self.connect_timeout:g} s: {exc}"
            ) from exc

    async def _run(self, work: Callable[[Connection], Awaitable[R]]) -> R:
        """Run ``work`` on a pooled connection; once more on another if the first one
        turns out broken (the server restarted since it was opened, say)."""
        for attempt in (1, 2):
            async with self._connection() as connection:
                try:
                    return await work(connection)
                except psycopg.OperationalError as exc:
                    if not connection.broken:
                        raise
                    if attempt == 2:
                        reason = " ".join(str(exc).split())
                        raise StoreUnavailableError(
                            f"lost the connection to PostgreSQL at {self.target.where}: {reason}"
                        ) from exc
        raise AssertionError("unreachable")

    async def _fetch(
        self, query: str, args: Sequence[Any] = (), *, binary: bool = False
    ) -> list[TupleRow]:
        async def work(connection: Connection) -> list[TupleRow]:
            async with connection.cursor(binary=binary) as cursor:
                await cursor.execute(query, args)
                return await cursor.fetchall()

        return await self._run(work)

    async def _execute(self, query: str, args: Sequence[Any] = ()) -> int:
        async def work(connection: Connection) -> int:
            cursor = await connection.execute(query, args)
            return cursor.rowcount

        return await self._run(work)

    # -- reading ------------------------------------------------------------------------

    async def events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        rows = await self._fetch(EVENTS, (execution_id, after_seq), binary=True)
        return [EVENT_DECODER.decode(row[0]) for row in rows]

    async def _latest_snapshot(self, execution_id: str) -> tuple[Execution, int] | None:
        rows = await self._fetch(
            "SELECT body, seq FROM snapshots WHERE execution_id = %s", (execution_id,), binary=True
        )
        if not rows:
            return None
        return SNAPSHOT_DECODER.decode(rows[0][0]), int(rows[0][1])

    async def get_execution(self, execution_id: str) -> Execution | None:
        return (await self._documents([execution_id])).get(execution_id)

    async def _documents(self, ids: list[str]) -> dict[str, Execution]:
        rows = await self._fetch(DOCUMENTS, (ids, ids), binary=True)
        snapshots: dict[str, tuple[int, bytes]] = {}
        bodies: dict[str, list[bytes]] = {}
        for execution_id, seq, body, is_snapshot in rows:
            if is_snapshot:
                snapshots[execution_id] = (seq, body)
            else:
                bodies.setdefault(execution_id, []).append(body)
        found: dict[str, Execution] = {}
        for execution_id in {*snapshots, *bodies}:
            execution = document(snapshots.get(execution_id), bodies.get(execution_id, []))
            if execution is not None:
                found[execution_id] = execution
        return found

    async def search(self, query: ExecutionQuery) -> Page[Execution]:
        count_sql, page_sql, args = search_sql(query)
        size = max(query.size, 1)
        offset = (max(query.page, 1) - 1) * size

        async def work(connection: Connection) -> tuple[int, list[str]]:
            # Not prepared: a generic plan would not see the LIKE prefix, nor use its index.
            async with connection.pipeline():
                counted = await connection.execute(count_sql, args, prepare=False)
                paged = await connection.execute(page_sql, [*args, size, offset], prepare=False)
            total = await counted.fetchone()
            return int(total[0]) if total else 0, [row[0] for row in await paged.fetchall()]

        total, ids = await self._run(work)
        documents = await self._documents(ids) if ids else {}
        return Page([documents[i] for i in ids if i in documents], total)

    async def logs(
        self,
        execution_id: str,
        *,
        task_run_id: str | None = None,
        attempt: int | None = None,
        min_level: str | None = None,
    ) -> list[LogEntry]:
        query, args = logs_sql(task_run_id, attempt, min_level)
        rows = await self._fetch(query, [execution_id, *args])
        return [
            LogEntry(
                execution_id=execution_id,
                seq=seq,
                task_run_id=run_id,
                task_id=task_id,
                attempt_number=number,
                level=level,
                timestamp=stamp,
                message=message,
            )
            for seq, run_id, task_id, number, level, stamp, message in rows
        ]

    async def metrics(self, execution_id: str) -> list[MetricEntry]:
        rows = await self._fetch(METRICS, (execution_id,))
        return [
            MetricEntry(
                execution_id=execution_id,
                task_run_id=run_id,
                attempt_number=number,
                name=name,
                type=kind,
                value=value,
                tags=msgspec.json.decode(tags),
                timestamp=stamp,
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
        query, args = metric_aggregate_sql(start, end)
        [(count, total, low, high)] = await self._fetch(query, [namespace, flow_id, name, *args])
        if not count:
            return MetricAggregate(name=name, count=0, sum=0.0, avg=None, min=None, max=None)
        return MetricAggregate(
            name=name,
            count=count,
            sum=float(total),
            avg=float(total) / count,
            min=float(low),
            max=float(high),
        )

    async def ended_since(
        self, after: datetime, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, datetime]]:
        at = utc(after)
        rows = await self._fetch(ENDED_SINCE, (at, at, after_id, TERMINAL_NAMES, limit))
        return [(str(execution_id), ended) for execution_id, ended in rows]

    async def unfinished(self) -> list[str]:
        return [row[0] for row in await self._fetch(UNFINISHED, (TERMINAL_NAMES,))]

    # -- flows --------------------------------------------------------------------------

    async def save_flow(self, namespace: str, flow_id: str, revision: int, source: str) -> None:
        now = datetime.now(UTC)

        async def work(connection: Connection) -> None:
            async with connection.transaction(), connection.pipeline():
                await connection.execute(
                    "INSERT INTO flows (namespace, id, revision, source, created) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (namespace, flow_id, revision, pg_text(source), now),
                )
                await connection.execute(
                    "DELETE FROM deleted_flows WHERE namespace = %s AND id = %s",
                    (namespace, flow_id),
                )

        await self._run(work)

    async def flow_revisions(self, namespace: str, flow_id: str) -> list[StoredFlow]:
        rows = await self._fetch(
            "SELECT revision, source, created FROM flows WHERE namespace = %s AND id = %s "
            "ORDER BY revision",
            (namespace, flow_id),
        )
        return [
            StoredFlow(
                namespace=namespace, id=flow_id, revision=revision, source=source, created=created
            )
            for revision, source, created in rows
        ]

    async def latest_flows(self) -> list[StoredFlow]:
        rows = await self._fetch(LATEST_FLOWS)
        return [
            StoredFlow(
                namespace=namespace, id=flow_id, revision=revision, source=source, created=created
            )
            for namespace, flow_id, revision, source, created in rows
        ]

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        inserted = await self._execute(
            "INSERT INTO deleted_flows (namespace, id) SELECT %s, %s WHERE EXISTS "
            "(SELECT 1 FROM flows WHERE namespace = %s AND id = %s) ON CONFLICT DO NOTHING",
            (namespace, flow_id, namespace, flow_id),
        )
        return inserted > 0

    # -- retention ----------------------------------------------------------------------

    async def delete_execution(self, execution_id: str) -> bool:
        await self.flush()
        return await self._run(lambda c: delete_executions(c, [execution_id])) > 0

    async def purge(self, ended_before: datetime) -> list[tuple[str, str, str]]:
        await self.flush()
        rows = await self._fetch(ENDED_BEFORE, (utc(ended_before), TERMINAL_NAMES))
        if rows:
            await self._run(lambda c: delete_executions(c, [row[2] for row in rows]))
        return [(namespace, flow_id, execution_id) for namespace, flow_id, execution_id in rows]

    # -- key-value documents ------------------------------------------------------------

    async def kv_get(self, namespace: str, key: str, now: datetime) -> Any | None:
        rows = await self._fetch(
            "SELECT value::text, expires FROM kv WHERE namespace = %s AND key = %s",
            (namespace, key),
        )
        if not rows:
            return None
        value, expires = rows[0]
        if expires is not None and utc(now) >= expires:
            await self._execute(
                "DELETE FROM kv WHERE namespace = %s AND key = %s AND expires <= %s",
                (namespace, key, utc(now)),
            )
            return None
        return msgspec.json.decode(value)

    async def kv_put(self, namespace: str, key: str, value: Any, expires: datetime | None) -> None:
        await self._execute(
            "INSERT INTO kv (namespace, key, value, expires) VALUES (%s, %s, %s::jsonb, %s) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, "
            "expires = excluded.expires",
            (
                namespace,
                key,
                _JSON.encode(value).decode(),
                None if expires is None else utc(expires),
            ),
        )

    async def kv_delete(self, namespace: str, key: str) -> bool:
        deleted = await self._execute(
            "DELETE FROM kv WHERE namespace = %s AND key = %s", (namespace, key)
        )
        return deleted > 0
