"""The SQLite schema, versioned: each migration runs once, in order, on open."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: executions, their events, logs, metrics, flows and key-value documents
    """
    CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        flow_revision INTEGER NOT NULL,
        state TEXT NOT NULL,
        start_date TEXT NOT NULL,
        end_date TEXT,
        labels TEXT NOT NULL,
        parent_id TEXT,
        snapshot BLOB,
        snapshot_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX executions_by_flow ON executions (namespace, flow_id, start_date);
    CREATE INDEX executions_by_state ON executions (state, end_date);
    CREATE INDEX executions_by_start ON executions (start_date);
    CREATE TABLE events (
        execution_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE logs (
        execution_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        task_run_id TEXT,
        task_id TEXT,
        attempt INTEGER,
        level TEXT NOT NULL,
        level_num INTEGER NOT NULL,
        timestamp TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        execution_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        task_run_id TEXT,
        attempt INTEGER,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        value REAL NOT NULL,
        tags TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX metrics_by_flow ON metrics (namespace, flow_id, name, timestamp);
    CREATE TABLE flows (
        namespace TEXT NOT NULL,
        id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        source TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (namespace, id, revision)
    );
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        expires TEXT,
        PRIMARY KEY (namespace, key)
    );
    """,
    # 2: deleted flows (their revisions stay for the executions that ran them)
    """
    CREATE TABLE deleted_flows (
        namespace TEXT NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (namespace, id)
    );
    CREATE INDEX executions_by_end ON executions (end_date);
    """,
]


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer Tiercel: refusing to touch it."""


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; return the version it is at."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    current = row[0] or 0
    if current > len(MIGRATIONS):
        raise SchemaTooNewError(
            f"database schema version {current} is newer than this Tiercel ({len(MIGRATIONS)})"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        connection.execute("BEGIN")
        try:
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
