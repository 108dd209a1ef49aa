"""The cluster's tables in PostgreSQL, and connections to them.

PostgreSQL is the coordinator: leases, the task queue, results and commands are rows;
``FOR UPDATE SKIP LOCKED`` hands work out; LISTEN/NOTIFY only wakes pollers early.
"""

from __future__ import annotations

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from runtime.errors import TiercelError

MIGRATIONS: list[str] = [
    # 1: nodes, execution leases, the task queue, attempt results, commands, singletons
    """
    CREATE TABLE cluster_nodes (
        id TEXT PRIMARY KEY,
        roles TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE execution_leases (
        execution_id TEXT PRIMARY KEY,
        owner TEXT,
        token BIGINT NOT NULL DEFAULT 0,
        expires_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX execution_leases_by_expiry ON execution_leases (expires_at);
    CREATE INDEX execution_leases_by_owner ON execution_leases (owner);
    CREATE TABLE task_queue (
        id BIGSERIAL PRIMARY KEY,
        execution_id TEXT NOT NULL,
        task_run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        request BYTEA NOT NULL,
        state SMALLINT NOT NULL DEFAULT 0,
        worker TEXT,
        claim INTEGER NOT NULL DEFAULT 0,
        lease_expires TIMESTAMPTZ,
        kill BOOLEAN NOT NULL DEFAULT false,
        outcome BYTEA,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        UNIQUE (task_run_id, attempt)
    );
    CREATE INDEX task_queue_ready ON task_queue (id) WHERE state = 0;
    CREATE INDEX task_queue_leased ON task_queue (lease_expires) WHERE state = 1;
    CREATE INDEX task_queue_by_worker ON task_queue (worker) WHERE state = 1;
    CREATE INDEX task_queue_by_execution ON task_queue (execution_id);
    CREATE TABLE task_results (
        id BIGSERIAL PRIMARY KEY,
        queue_id BIGINT NOT NULL,
        execution_id TEXT NOT NULL,
        kind SMALLINT NOT NULL,
        body BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX task_results_by_queue ON task_results (queue_id, id);
    CREATE INDEX task_results_by_execution ON task_results (execution_id);
    CREATE TABLE commands (
        id BIGSERIAL PRIMARY KEY,
        execution_id TEXT NOT NULL,
        body BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        taken_by TEXT,
        taken_at TIMESTAMPTZ,
        reply BYTEA,
        replied_at TIMESTAMPTZ
    );
    CREATE INDEX commands_pending ON commands (id) WHERE replied_at IS NULL;
    CREATE TABLE singleton_leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 2: outcomes and log lines addressed to the executor waiting for them (an indexed
    # read per poll, instead of a list of every attempt it waits for)
    """
    ALTER TABLE task_queue ADD COLUMN executor TEXT;
    ALTER TABLE task_queue ADD COLUMN delivered BOOLEAN NOT NULL DEFAULT false;
    CREATE INDEX task_queue_undelivered ON task_queue (executor)
        WHERE state >= 2 AND NOT delivered;
    ALTER TABLE task_results ADD COLUMN executor TEXT;
    CREATE INDEX task_results_by_executor ON task_results (executor, id);
    """,
    # 3: an attempt's end is a row in task_results too (kind 2, its state beside it), so an
    # executor's poll is one DELETE, and a finished queue row is written once, not twice;
    # indexes no statement uses are gone (every index costs each queue row's updates)
    """
    ALTER TABLE task_results ADD COLUMN state SMALLINT;
    DROP INDEX task_queue_undelivered;
    ALTER TABLE task_queue DROP COLUMN delivered;
    DROP INDEX task_queue_by_worker;
    DROP INDEX task_results_by_queue;
    """,
    # 4: flow concurrency limits across the cluster: a row per flow (its limit, locked by
    # whoever admits or releases its executions), a slot row per execution that counts as
    # running, and the flow's queue of QUEUED executions, oldest first
    """
    CREATE TABLE concurrency_flows (
        flow TEXT PRIMARY KEY,
        max_running INTEGER NOT NULL
    );
    CREATE TABLE concurrency_slots (
        execution_id TEXT PRIMARY KEY,
        flow TEXT NOT NULL,
        acquired_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX concurrency_slots_by_flow ON concurrency_slots (flow);
    CREATE INDEX concurrency_slots_by_age ON concurrency_slots (acquired_at);
    CREATE TABLE concurrency_queue (
        id BIGSERIAL PRIMARY KEY,
        execution_id TEXT NOT NULL UNIQUE,
        flow TEXT NOT NULL,
        queued_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX concurrency_queue_by_flow ON concurrency_queue (flow, id);
    CREATE INDEX concurrency_queue_by_age ON concurrency_queue (queued_at);
    """,
]

_LOCK_KEY = 0x7469657263656C  # "tiercel": one advisory lock for cluster migrations


class ClusterError(TiercelError):
    """The cluster's database is unusable (unreachable, or a schema too new)."""


async def open_pool(
    url: str, *, max_size: int = 8, idle_transaction_limit: float = 5.0
) -> AsyncConnectionPool:
    """A pool of connections to the cluster's database: the store's URL, with the same
    ``schema`` (the cluster's tables sit beside the store's).

    A transaction that sits idle ``idle_transaction_limit`` seconds (its process was cut
    off from the database while holding a flow's concurrency lock, say) is ended by
    PostgreSQL, so that other nodes are not blocked for as long as a partition lasts.

    :raises ClusterError: if the URL is wrong or the database cannot be reached.
    """
    from runtime.store._errors import StoreUrlError
    from runtime.store._pg_url import parse_postgres_url

    try:
        target = parse_postgres_url(url)
    except StoreUrlError as exc:
        raise ClusterError(str(exc)) from None
    schema = target.schema

    idle_limit = f"{max(1000, round(idle_transaction_limit * 1000))}ms"

    async def configure(connection: AsyncConnection) -> None:
        await connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        await connection.execute(
            "SELECT set_config('idle_in_transaction_session_timeout', %s, false)", (idle_limit,)
        )
        await connection.commit()

    pool = AsyncConnectionPool(
        target.conninfo,
        min_size=1,
        max_size=max_size,
        open=False,
        configure=configure,
        # Every statement is its own transaction (one round trip); the few that need more
        # open one explicitly.
        kwargs={"autocommit": True},
    )
    try:
        await pool.open(wait=True, timeout=10)
    except Exception as exc:  # psycopg's PoolTimeout wraps the real reason
        await pool.close()
        raise ClusterError(f"cannot connect to PostgreSQL at {target.where}: {exc}") from None
    async with pool.connection() as connection:
        await connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
        )
    await migrate(pool)
    return pool


async def migrate(pool: AsyncConnectionPool) -> int:
    """Bring the cluster tables to the latest version (once, whoever runs it first)."""
    async with pool.connection() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS cluster_schema_version (version INTEGER NOT NULL)"
        )
        cursor = await connection.execute("SELECT MAX(version) FROM cluster_schema_version")
        row = await cursor.fetchone()
        current = (row[0] if row else None) or 0
        if current > len(MIGRATIONS):
            raise ClusterError(
                f"cluster schema version {current} is newer than this Tiercel ({len(MIGRATIONS)})"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            await connection.execute(MIGRATIONS[version - 1])
            await connection.execute(
                "INSERT INTO cluster_schema_version (version) VALUES (%s)", (version,)
            )
    return len(MIGRATIONS)
