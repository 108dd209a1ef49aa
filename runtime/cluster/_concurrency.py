"""Flow concurrency limits across the cluster, the way Kestra's JDBC backend keeps them.

A flow with ``concurrency: {limit: N}`` has a row in ``concurrency_flows`` (its limit).
Each of its executions that counts as running has a slot row in ``concurrency_slots``;
each one waiting (QUEUED) a row in ``concurrency_queue``, in arrival order. Admitting an
execution and releasing one are each one short transaction that first locks the flow's
row, so the count and the queue of a flow change one transaction at a time, whichever
executor runs them.

When a running execution ends, the oldest queued one of its flow is given the slot: its
queue row becomes a slot row in the same transaction. That grant is durable; the executor
that owns the queued execution (maybe another one, maybe one that takes it over after a
crash) finds it by polling (NOTIFY only wakes it early) and lets it run. Rows go when
their execution ends; slots whose execution ended without releasing them (a crash in
between) are reconciled against the store.
"""

from __future__ import annotations

import structlog
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from runtime.model import ConcurrencyBehavior, Flow
from runtime.store import Store

log = structlog.get_logger("tiercel.cluster")

CONCURRENCY_CHANNEL = "tiercel_concurrency"

LOCK_FLOW = (
    "INSERT INTO concurrency_flows AS f (flow, max_running) VALUES (%s, %s) "
    "ON CONFLICT (flow) DO UPDATE SET max_running = EXCLUDED.max_running "
    "WHERE f.max_running <> EXCLUDED.max_running"
)
"""Lock the flow's row (ON CONFLICT locks it even when the limit is unchanged and the row
is not written), keeping the limit of the latest admission."""
LOCK_KNOWN_FLOW = "SELECT max_running FROM concurrency_flows WHERE flow = %s FOR UPDATE"
FLOW_OF = (
    "(SELECT flow FROM concurrency_slots WHERE execution_id = %s) UNION ALL "
    "(SELECT flow FROM concurrency_queue WHERE execution_id = %s) LIMIT 1"
)
HAS_SLOT = "SELECT 1 FROM concurrency_slots WHERE execution_id = %s"
RUNNING = "SELECT count(*) FROM concurrency_slots WHERE flow = %s"
TAKE_SLOT = (
    "INSERT INTO concurrency_slots (execution_id, flow) VALUES (%s, %s) "
    "ON CONFLICT (execution_id) DO NOTHING"
)
FREE_SLOT = "DELETE FROM concurrency_slots WHERE execution_id = %s"
ENQUEUE = (
    "INSERT INTO concurrency_queue (execution_id, flow) VALUES (%s, %s) "
    "ON CONFLICT (execution_id) DO NOTHING"
)
UNQUEUE = "DELETE FROM concurrency_queue WHERE execution_id = %s"
GRANT_OLDEST = (
    "WITH next AS (DELETE FROM concurrency_queue WHERE id IN ("
    "SELECT id FROM concurrency_queue WHERE flow = %s ORDER BY id LIMIT %s) "
    "RETURNING execution_id, flow) "
    "INSERT INTO concurrency_slots (execution_id, flow) SELECT execution_id, flow FROM next "
    "ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id"
)
"""The oldest queued executions of a flow get slots (as many as are free)."""
NOTIFY = f"SELECT pg_notify('{CONCURRENCY_CHANNEL}', '')"
GRANTED = "SELECT execution_id FROM concurrency_slots WHERE execution_id = ANY(%s)"
STALE = (
    "(SELECT s.execution_id FROM concurrency_slots s "
    "WHERE s.acquired_at < now() - make_interval(secs => %s) AND NOT EXISTS ("
    "SELECT 1 FROM execution_leases l WHERE l.execution_id = s.execution_id) "
    "ORDER BY s.acquired_at LIMIT %s) UNION ALL "
    "(SELECT q.execution_id FROM concurrency_queue q "
    "WHERE q.queued_at < now() - make_interval(secs => %s) AND NOT EXISTS ("
    "SELECT 1 FROM execution_leases l WHERE l.execution_id = q.execution_id) "
    "ORDER BY q.queued_at LIMIT %s)"
)
"""Slots and queue rows of executions no executor owns (an execution that runs or waits
has a lease row; one that ended has none): candidates for reconciliation."""

Connection = AsyncConnection[TupleRow]


class ClusterConcurrency:
    """The flow concurrency gate of one executor (see :class:`runtime.engine.Runtime`'s
    ``concurrency_gate``), on the cluster's tables."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.waiting: set[str] = set()
        """QUEUED executions of this node waiting for a grant (the executor polls them)."""

    async def admit(self, flow: Flow, execution_id: str) -> bool:
        """A slot for ``execution_id`` if it holds one or one is free (the oldest queued
        executions of the flow go first); else, with behavior QUEUE, a place in the
        flow's queue (kept if it has one)."""
        concurrency = flow.concurrency
        assert concurrency is not None
        queue = concurrency.behavior is ConcurrencyBehavior.QUEUE
        async with self.pool.connection() as connection, connection.transaction():
            await connection.execute(LOCK_FLOW, (flow.uid, concurrency.limit))
            if await (await connection.execute(HAS_SLOT, (execution_id,))).fetchone():
                admitted = True
            else:
                running = await _running(connection, flow.uid)
                granted = await _grant(connection, flow.uid, concurrency.limit - running)
                admitted = execution_id in granted
                if not admitted and running + len(granted) < concurrency.limit:
                    await connection.execute(TAKE_SLOT, (execution_id, flow.uid))
                    await connection.execute(UNQUEUE, (execution_id,))
                    admitted = True
                elif not admitted and queue:
                    await connection.execute(ENQUEUE, (execution_id, flow.uid))
        if admitted:
            self.waiting.discard(execution_id)
        elif queue:
            self.waiting.add(execution_id)
        return admitted

    async def hold(self, flow: Flow, execution_id: str) -> None:
        """Count ``execution_id`` as running whatever the limit (once: a slot is per
        execution)."""
        concurrency = flow.concurrency
        assert concurrency is not None
        async with self.pool.connection() as connection, connection.transaction():
            await connection.execute(LOCK_FLOW, (flow.uid, concurrency.limit))
            await connection.execute(TAKE_SLOT, (execution_id, flow.uid))
            await connection.execute(UNQUEUE, (execution_id,))
        self.waiting.discard(execution_id)

    async def release(self, execution_id: str) -> None:
        """Free the slot or the queue row of ``execution_id`` (ended, killed, deleted) and
        give freed slots of its flow to the oldest queued executions."""
        self.waiting.discard(execution_id)
        async with self.pool.connection() as connection, connection.transaction():
            row = await (await connection.execute(FLOW_OF, (execution_id, execution_id))).fetchone()
            if row is None:
                return
            flow = str(row[0])
            found = await (await connection.execute(LOCK_KNOWN_FLOW, (flow,))).fetchone()
            await connection.execute(FREE_SLOT, (execution_id,))
            await connection.execute(UNQUEUE, (execution_id,))
            if found is not None:
                limit = int(found[0])
                await _grant(connection, flow, limit - await _running(connection, flow))

    async def granted(self) -> list[str]:
        """The executions of :attr:`waiting` that were given a slot since."""
        if not self.waiting:
            return []
        async with self.pool.connection() as connection:
            rows = await (await connection.execute(GRANTED, (list(self.waiting),))).fetchall()
        return [str(row[0]) for row in rows]

    async def reconcile(self, store: Store, older_than: float, limit: int = 100) -> list[str]:
        """Release the slots and queue rows, older than ``older_than`` seconds and with no
        lease, of executions that ended or are gone from ``store`` (their executor died
        between the end and the release). Returns their ids."""
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(STALE, (older_than, limit, older_than, limit))
            ).fetchall()
        released: list[str] = []
        for (execution_id,) in rows:
            execution = await store.get_execution(str(execution_id))
            if execution is None or execution.state.current.terminal:
                log.warning(
                    "releasing the concurrency slot of an ended execution",
                    execution_id=execution_id,
                )
                await self.release(str(execution_id))
                released.append(str(execution_id))
        return released


async def _running(connection: Connection, flow: str) -> int:
    row = await (await connection.execute(RUNNING, (flow,))).fetchone()
    return int(row[0]) if row is not None else 0


async def _grant(connection: Connection, flow: str, free: int) -> set[str]:
    """Within the flow's transaction: slots for the oldest ``free`` queued executions."""
    if free <= 0:
        return set()
    rows = await (await connection.execute(GRANT_OLDEST, (flow, free))).fetchall()
    if rows:
        await connection.execute(NOTIFY)
    return {str(row[0]) for row in rows}
