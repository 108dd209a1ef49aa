"""The statements of the PostgreSQL store, and how one group commit is written.

Kept apart from the store so that tests can check that each statement can use an index.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from runtime.model._execution import Execution
from runtime.model._fold import ExecutionFold, FoldError
from runtime.model._states import TERMINAL
from runtime.store._base import EVENT_DECODER, LEVELS, SNAPSHOT_DECODER, ExecutionQuery

Connection = AsyncConnection[TupleRow]
TERMINAL_NAMES = sorted(state.value for state in TERMINAL)
_JSON = msgspec.json.Encoder()

# -- values PostgreSQL accepts ----------------------------------------------------------


def pg_text(value: str) -> str:
    """Text PostgreSQL can store: it refuses NUL, which SQLite and msgspec accept (a log
    line of a script may hold one). Events keep it: their bodies are bytes."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def json_text(value: dict[str, str]) -> str:
    return _JSON.encode({pg_text(k): pg_text(v) for k, v in value.items()}).decode()


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# -- the writer's statements ------------------------------------------------------------

_EVENT_COLUMNS = ("execution_id", "seq", "body")
_EVENT_TYPES = ("text", "int8", "bytea")
_LOG_COLUMNS = (
    "execution_id",
    "seq",
    "task_run_id",
    "task_id",
    "attempt",
    "level",
    "level_num",
    "timestamp",
    "message",
)
_LOG_TYPES = ("text", "int8", "text", "text", "int4", "text", "int2", "timestamptz", "text")


def _copy(table: str, columns: Sequence[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"


def _insert_unnest(table: str, columns: Sequence[str], types: Sequence[str]) -> str:
    arrays = ", ".join(f"%b::{kind}[]" for kind in types)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT DO NOTHING"
    )


COPY_EVENTS = _copy("events", _EVENT_COLUMNS)
INSERT_EVENTS = _insert_unnest("events", _EVENT_COLUMNS, _EVENT_TYPES)
COPY_LOGS = _copy("logs", _LOG_COLUMNS)
INSERT_LOGS = _insert_unnest("logs", _LOG_COLUMNS, _LOG_TYPES)
INSERT_EXECUTIONS = (
    "INSERT INTO executions (id, namespace, flow_id, flow_revision, state, start_date, "
    "labels, parent_id) SELECT v.id, v.namespace, v.flow_id, v.flow_revision, v.state, "
    "v.start_date, v.labels::jsonb, v.parent_id FROM unnest(%b::text[], %b::text[], "
    "%b::text[], %b::int4[], %b::text[], %b::timestamptz[], %b::text[], %b::text[]) "
    "AS v(id, namespace, flow_id, flow_revision, state, start_date, labels, parent_id) "
    "ON CONFLICT (id) DO NOTHING"
)
UPDATE_STATES = (
    "UPDATE executions e SET state = v.state, end_date = v.end_date "
    "FROM unnest(%b::text[], %b::text[], %b::timestamptz[]) AS v(id, state, end_date) "
    "WHERE e.id = v.id"
)
UPDATE_LABELS = (
    "UPDATE executions e SET labels = v.labels::jsonb "
    "FROM unnest(%b::text[], %b::text[]) AS v(id, labels) WHERE e.id = v.id"
)
INSERT_METRICS = (
    "INSERT INTO metrics (execution_id, seq, namespace, flow_id, task_run_id, attempt, name, "
    "type, value, tags, timestamp) SELECT v.execution_id, v.seq, coalesce(e.namespace, ''), "
    "coalesce(e.flow_id, ''), v.task_run_id, v.attempt, v.name, v.type, v.value, "
    "v.tags::jsonb, v.timestamp FROM unnest(%b::text[], %b::int8[], %b::text[], %b::int4[], "
    "%b::text[], %b::text[], %b::float8[], %b::text[], %b::timestamptz[]) AS v(execution_id, "
    "seq, task_run_id, attempt, name, type, value, tags, timestamp) "
    "LEFT JOIN executions e ON e.id = v.execution_id ON CONFLICT DO NOTHING"
)
UPSERT_SNAPSHOTS = (
    "INSERT INTO snapshots (execution_id, seq, body) SELECT v.id, v.seq, v.body "
    "FROM unnest(%b::text[], %b::int8[], %b::bytea[]) AS v(id, seq, body) "
    "WHERE EXISTS (SELECT 1 FROM executions e WHERE e.id = v.id) "
    "ON CONFLICT (execution_id) DO UPDATE SET seq = excluded.seq, body = excluded.body "
    "WHERE snapshots.seq <= excluded.seq"
)


class Batch:
    """Rows of one group commit, column by column where ``unnest`` takes them."""

    __slots__ = ("created", "events", "labels", "logs", "metrics", "snapshots", "states")

    def __init__(self) -> None:
        self.events: list[tuple[str, int, bytes]] = []
        self.created: list[tuple[Any, ...]] = []
        self.states: dict[str, tuple[str, datetime | None]] = {}
        self.labels: dict[str, str] = {}
        self.logs: list[tuple[Any, ...]] = []
        self.metrics: list[tuple[Any, ...]] = []
        self.snapshots: list[tuple[str, int, bytes]] = []

    def __len__(self) -> int:
        return len(self.events) + len(self.snapshots)

    def execution_ids(self) -> set[str]:
        """Every execution this batch writes to."""
        ids = {row[0] for row in self.events}
        ids.update(row[0] for row in self.snapshots)
        ids.update(self.states)
        ids.update(self.labels)
        return ids

    def drop(self, ids: set[str]) -> None:
        """Leave out every row of the executions ``ids``."""
        self.events = [row for row in self.events if row[0] not in ids]
        self.created = [row for row in self.created if row[0] not in ids]
        self.states = {k: v for k, v in self.states.items() if k not in ids}
        self.labels = {k: v for k, v in self.labels.items() if k not in ids}
        self.logs = [row for row in self.logs if row[0] not in ids]
        self.metrics = [row for row in self.metrics if row[0] not in ids]
        self.snapshots = [row for row in self.snapshots if row[0] not in ids]


class Fence(Protocol):
    """Whose events a store may write (a cluster executor's leases, see runtime.cluster).

    ``owned`` maps the executions this process owns to its fencing tokens; ``revoked``
    are executions it gave up (their pending events are dropped); ``lost`` is told of
    owned executions whose lease turned out to be someone else's.
    """

    owner: str
    owned: dict[str, int]
    revoked: set[str]
    lease_seconds: float

    def lost(self, execution_ids: set[str]) -> None:
        """Those executions are someone else's now: nothing of theirs was written."""
        ...


async def apply_fence(connection: Connection, batch: Batch, fence: Fence) -> set[str]:
    """Within the batch's transaction, leave out executions this process no longer owns;
    return the owned ones found lost. The lease rows are locked (FOR SHARE) until the
    commit, so a claim by another executor waits for this batch and then sees it.

    Should this process be cut off from the database in the middle of the transaction,
    PostgreSQL cannot tell: the locks would stay, and no executor could take the
    executions over for as long as the partition lasts. So the transaction may sit idle
    for half a lease at most (``idle_in_transaction_session_timeout``, for this
    transaction only); then PostgreSQL ends the session and the locks go."""
    ids = batch.execution_ids()
    dropped = ids & fence.revoked
    owned = {i: fence.owned[i] for i in ids if i in fence.owned}
    lost: set[str] = set()
    if owned:
        idle_limit = f"{max(1000, round(fence.lease_seconds * 500))}ms"
        cursor = await connection.execute(
            "WITH t AS (SELECT set_config('idle_in_transaction_session_timeout', %s, true)) "
            "SELECT l.execution_id, l.owner, l.token FROM execution_leases l, t "
            "WHERE l.execution_id = ANY(%s) FOR SHARE OF l",
            (idle_limit, list(owned)),
        )
        rows = {str(e): (o, int(t)) for e, o, t in await cursor.fetchall()}
        for execution_id, token in owned.items():
            found = rows.get(execution_id)
            if found is None or found[0] != fence.owner or found[1] != token:
                lost.add(execution_id)
    if dropped or lost:
        batch.drop(dropped | lost)
    return lost


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def write_batch(
    connection: Connection, batch: Batch, *, idempotent: bool, fence: Fence | None = None
) -> set[str]:
    """Write one batch in one transaction. ``idempotent``: insert events and logs with
    ``ON CONFLICT DO NOTHING`` (slower than ``COPY``), for a batch that may be stored
    already (a retry after the connection was lost around the commit). With a ``fence``,
    only executions this process still owns are written; returns those found lost."""
    lost: set[str] = set()
    async with connection.transaction():
        if fence is not None:
            lost = await apply_fence(connection, batch, fence)
        if not idempotent:
            await _copy_rows(connection, COPY_EVENTS, _EVENT_TYPES, batch.events)
            await _copy_rows(connection, COPY_LOGS, _LOG_TYPES, batch.logs)
        statements: list[tuple[str, list[list[Any]]]] = []
        if batch.created:
            statements.append((INSERT_EXECUTIONS, _columns(batch.created)))
        if idempotent and batch.events:
            statements.append((INSERT_EVENTS, _columns(batch.events)))
        if batch.states:
            ids = list(batch.states)
            states, ends = zip(*batch.states.values(), strict=True)
            statements.append((UPDATE_STATES, [ids, list(states), list(ends)]))
        if batch.labels:
            statements.append((UPDATE_LABELS, [list(batch.labels), list(batch.labels.values())]))
        if idempotent and batch.logs:
            statements.append((INSERT_LOGS, _columns(batch.logs)))
        if batch.metrics:
            statements.append((INSERT_METRICS, _columns(batch.metrics)))
        if batch.snapshots:
            statements.append((UPSERT_SNAPSHOTS, _columns(batch.snapshots)))
        if statements:
            async with connection.pipeline(), connection.cursor() as cursor:
                for query, columns in statements:
                    await cursor.execute(query, columns, binary=True)
    return lost


async def _copy_rows(
    connection: Connection, statement: str, types: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    async with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            await copy.write_row(row)


# -- reading ----------------------------------------------------------------------------

DOCUMENTS = (
    "WITH s AS (SELECT execution_id, seq, body FROM snapshots WHERE execution_id = ANY(%s)) "
    "SELECT execution_id, seq, body, true FROM s UNION ALL "
    "SELECT e.execution_id, e.seq, e.body, false FROM events e "
    "WHERE e.execution_id = ANY(%s) AND e.seq > coalesce("
    "(SELECT s.seq FROM s WHERE s.execution_id = e.execution_id), 0) "
    "ORDER BY 1, 4 DESC, 2"
)
"""Snapshot and later events of some executions, in one statement (so one MVCC snapshot:
a snapshot written meanwhile cannot leave a gap between the two)."""


def search_sql(query: ExecutionQuery) -> tuple[str, str, list[Any]]:
    """The count and the page-of-ids statements of a search, and their arguments."""
    clauses: list[str] = []
    args: list[Any] = []
    if query.namespace is not None:
        clauses.append("(namespace = %s OR namespace LIKE %s)")
        escaped = query.namespace.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args += [query.namespace, escaped + ".%"]
    if query.flow_id is not None:
        clauses.append("flow_id = %s")
        args.append(query.flow_id)
    if query.states:
        clauses.append("state = ANY(%s)")
        args.append([state.value for state in query.states])
    if query.started_after is not None:
        clauses.append("start_date >= %s")
        args.append(utc(query.started_after))
    if query.started_before is not None:
        clauses.append("start_date < %s")
        args.append(utc(query.started_before))
    if query.ended_after is not None:
        clauses.append("end_date >= %s AND state = ANY(%s)")
        args += [utc(query.ended_after), TERMINAL_NAMES]
    if query.labels:
        clauses.append("labels @> %s")
        args.append(Jsonb({pg_text(k): pg_text(v) for k, v in query.labels.items()}))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    count = f"SELECT count(*) FROM executions {where}"
    page = (
        f"SELECT id FROM executions {where} "
        "ORDER BY start_date DESC, created_order DESC LIMIT %s OFFSET %s"
    )
    return count, page, args


EVENTS = "SELECT body FROM events WHERE execution_id = %s AND seq > %s ORDER BY seq"
METRICS = (
    "SELECT task_run_id, attempt, name, type, value, tags::text, timestamp FROM metrics "
    "WHERE execution_id = %s ORDER BY seq"
)
UNFINISHED = (
    "SELECT id FROM executions WHERE end_date IS NULL AND state <> ALL(%s) ORDER BY start_date"
)
ENDED_BEFORE = (
    "SELECT namespace, flow_id, id FROM executions WHERE end_date < %s AND state = ANY(%s)"
)
ENDED_SINCE = (
    "SELECT id, end_date FROM executions WHERE end_date >= %s AND (end_date > %s OR id > %s) "
    "AND state = ANY(%s) ORDER BY end_date, id LIMIT %s"
)
LATEST_FLOWS = (
    "SELECT DISTINCT ON (f.namespace, f.id) f.namespace, f.id, f.revision, f.source, "
    "f.created FROM flows f WHERE NOT EXISTS (SELECT 1 FROM deleted_flows d "
    "WHERE d.namespace = f.namespace AND d.id = f.id) "
    "ORDER BY f.namespace, f.id, f.revision DESC"
)


def logs_sql(
    task_run_id: str | None, attempt: int | None, min_level: str | None
) -> tuple[str, list[Any]]:
    """The statement of a logs query (its first argument, the execution id, not given)."""
    sql_text = (
        "SELECT seq, task_run_id, task_id, attempt, level, timestamp, message "
        "FROM logs WHERE execution_id = %s"
    )
    args: list[Any] = []
    if task_run_id is not None:
        sql_text += " AND task_run_id = %s"
        args.append(task_run_id)
    if attempt is not None:
        sql_text += " AND attempt = %s"
        args.append(attempt)
    if min_level is not None:
        sql_text += " AND level_num >= %s"
        args.append(LEVELS.get(min_level.upper(), 0))
    return sql_text + " ORDER BY seq", args


def metric_aggregate_sql(start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    """The statement of a metric aggregate (namespace, flow id and name not given)."""
    sql_text = (
        "SELECT count(*), sum(value), min(value), max(value) FROM metrics "
        "WHERE namespace = %s AND flow_id = %s AND name = %s"
    )
    args: list[Any] = []
    if start is not None:
        sql_text += " AND timestamp >= %s"
        args.append(utc(start))
    if end is not None:
        sql_text += " AND timestamp < %s"
        args.append(utc(end))
    return sql_text, args


def document(snapshot: tuple[int, bytes] | None, bodies: list[bytes]) -> Execution | None:
    """An execution from its latest snapshot and the events after it (as ``Store`` does)."""
    events = [EVENT_DECODER.decode(body) for body in bodies]
    if snapshot is None:
        fold = ExecutionFold()
        fold.apply_all(events)
        return fold.execution
    seq, body = snapshot
    execution = SNAPSHOT_DECODER.decode(body)
    fold = ExecutionFold.load(execution, seq)
    try:
        fold.apply_all(events)
    except FoldError:
        return execution
    return fold.execution


async def delete_executions(connection: Connection, ids: list[str]) -> int:
    """Delete executions with everything they have, in one transaction; how many existed."""
    async with connection.transaction():
        async with connection.pipeline():
            for table in ("events", "snapshots", "logs", "metrics"):
                await connection.execute(
                    sql.SQL("DELETE FROM {} WHERE execution_id = ANY(%s)").format(
                        sql.Identifier(table)
                    ),
                    (ids,),
                )
            deleted = await connection.execute("DELETE FROM executions WHERE id = ANY(%s)", (ids,))
        return deleted.rowcount
