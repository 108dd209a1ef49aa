"""The PostgreSQL schema, versioned: each migration runs once, in order, on open.

Migrations of one schema are serialized across processes by a transaction-level advisory
lock, so several processes opening the same database at once migrate it exactly once.
Identifiers that are compared or sorted (ids, namespaces, flow ids) use the "C" collation:
byte order, as SQLite sorts them, and left-anchored ``LIKE`` can use their indexes.
"""

from __future__ import annotations

import zlib

from psycopg import AsyncConnection, sql

from runtime.store._migrations import SchemaTooNewError

MIGRATIONS: list[str] = [
    # 1: executions, their events, snapshots, logs, metrics, flows and key-value documents
    """
    CREATE TABLE executions (
        id text COLLATE "C" PRIMARY KEY,
        namespace text COLLATE "C" NOT NULL,
        flow_id text COLLATE "C" NOT NULL,
        flow_revision integer NOT NULL,
        state text COLLATE "C" NOT NULL,
        start_date timestamptz NOT NULL,
        end_date timestamptz,
        labels jsonb NOT NULL,
        parent_id text COLLATE "C",
        created_order bigint GENERATED ALWAYS AS IDENTITY
    );
    CREATE INDEX executions_by_start ON executions (start_date DESC, created_order DESC);
    CREATE INDEX executions_by_namespace ON executions (namespace, flow_id, start_date DESC);
    CREATE INDEX executions_by_flow ON executions (flow_id, start_date DESC);
    CREATE INDEX executions_by_state ON executions (state, start_date DESC);
    CREATE INDEX executions_unfinished ON executions (start_date) WHERE end_date IS NULL;
    CREATE INDEX executions_by_end ON executions (end_date) WHERE end_date IS NOT NULL;
    CREATE INDEX executions_by_labels ON executions USING gin (labels jsonb_path_ops);
    CREATE TABLE events (
        execution_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        body bytea NOT NULL,
        PRIMARY KEY (execution_id, seq)
    );
    CREATE TABLE snapshots (
        execution_id text COLLATE "C" PRIMARY KEY,
        seq bigint NOT NULL,
        body bytea NOT NULL
    );
    CREATE TABLE logs (
        execution_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        task_run_id text COLLATE "C",
        task_id text,
        attempt integer,
        level text NOT NULL,
        level_num smallint NOT NULL,
        timestamp timestamptz NOT NULL,
        message text NOT NULL,
        PRIMARY KEY (execution_id, seq)
    );
    CREATE TABLE metrics (
        execution_id text COLLATE "C" NOT NULL,
        seq bigint NOT NULL,
        namespace text COLLATE "C" NOT NULL,
        flow_id text COLLATE "C" NOT NULL,
        task_run_id text COLLATE "C",
        attempt integer,
        name text COLLATE "C" NOT NULL,
        type text NOT NULL,
        value double precision NOT NULL,
        tags jsonb NOT NULL,
        timestamp timestamptz NOT NULL,
        PRIMARY KEY (execution_id, seq)
    );
    CREATE INDEX metrics_by_flow ON metrics (namespace, flow_id, name, timestamp);
    CREATE TABLE flows (
        namespace text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        revision integer NOT NULL,
        source text NOT NULL,
        created timestamptz NOT NULL,
        PRIMARY KEY (namespace, id, revision)
    );
    CREATE TABLE deleted_flows (
        namespace text COLLATE "C" NOT NULL,
        id text COLLATE "C" NOT NULL,
        PRIMARY KEY (namespace, id)
    );
    CREATE TABLE kv (
        namespace text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        value jsonb NOT NULL,
        expires timestamptz,
        PRIMARY KEY (namespace, key)
    )
    """,
    # 2: snapshots (the whole document of a large execution, megabytes) compressed with
    # lz4 rather than pglz: a third of the database's CPU for them. A server built
    # without lz4 keeps pglz.
    """
    DO $$
    BEGIN
        ALTER TABLE snapshots ALTER COLUMN body SET COMPRESSION lz4;
    EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
        NULL;
    END
    $$
    """,
]

_LOCK_CLASS = 0x54435201
"""First key of the advisory lock (an arbitrary constant: "TCR" and 1); the second is the
schema's CRC-32, so that stores in different schemas do not wait for each other."""


def lock_key(schema: str) -> int:
    """The second key of the migration lock of ``schema`` (a signed 32-bit integer)."""
    crc = zlib.crc32(schema.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


async def migrate(connection: AsyncConnection[tuple[object, ...]], schema: str) -> int:
    """Create ``schema`` if missing and bring it to the latest version, in one transaction
    under an advisory lock; return the version it is at.

    :raises SchemaTooNewError: if the schema was written by a newer Tiercel.
    """
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, lock_key(schema))
        )
        await connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
        )
        await connection.execute(
            sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema))
        )
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
        )
        cursor = await connection.execute("SELECT max(version) FROM schema_version")
        row = await cursor.fetchone()
        current = row[0] if row is not None and isinstance(row[0], int) else 0
        if current > len(MIGRATIONS):
            raise SchemaTooNewError(
                f"database schema {schema!r} is at version {current}, newer than this "
                f"Tiercel ({len(MIGRATIONS)})"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            await connection.execute(MIGRATIONS[version - 1])
            await connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return len(MIGRATIONS)
