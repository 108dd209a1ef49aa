"""Execution ownership: a lease per execution, with an expiry and a fencing token.

An executor owns an execution while its lease row names it and has not expired; it renews
its leases by heartbeat. Claiming an execution (a new one nobody owns yet, or one whose
owner stopped renewing) increments the token, and the store accepts an executor's events
only while its token is the row's: a stale owner can no longer write once another has
taken over, and the new owner reads the event log after its claim, so it sees everything
the old one wrote.
"""

from __future__ import annotations

import structlog
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger("tiercel.cluster")


class Leases:
    """The lease rows, seen from one node (``owner``)."""

    def __init__(self, pool: AsyncConnectionPool, owner: str, lease_seconds: float = 10.0):
        self.pool = pool
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def announce(self, execution_id: str) -> None:
        """A new execution no one owns yet: the first executor to look claims it."""
        async with self.pool.connection() as connection:
            await connection.execute(
                "WITH a AS (INSERT INTO execution_leases (execution_id, owner, token, expires_at) "
                "VALUES (%s, NULL, 0, now()) ON CONFLICT (execution_id) DO UPDATE "
                "SET owner = NULL, expires_at = now() "
                "WHERE execution_leases.owner IS NULL OR execution_leases.expires_at < now()) "
                "SELECT pg_notify('tiercel_executions', '')",
                (execution_id,),
            )

    async def acquire(self, execution_id: str) -> int | None:
        """Own ``execution_id`` now if no one else holds a live lease; return the token."""
        async with self.pool.connection() as connection:
            row = await (
                await connection.execute(
                    "INSERT INTO execution_leases AS l (execution_id, owner, token, expires_at) "
                    "VALUES (%s, %s, 1, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (execution_id) DO UPDATE SET owner = EXCLUDED.owner, "
                    "token = l.token + 1, expires_at = EXCLUDED.expires_at "
                    "WHERE l.owner IS NULL OR l.owner = EXCLUDED.owner OR l.expires_at < now() "
                    "RETURNING token",
                    (execution_id, self.owner, self.lease_seconds),
                )
            ).fetchone()
        return int(row[0]) if row is not None else None

    async def claim(self, limit: int) -> list[tuple[str, int]]:
        """Take up to ``limit`` executions no one owns (new, or their owner is gone)."""
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(
                    "UPDATE execution_leases l SET owner = %s, token = l.token + 1, "
                    "expires_at = now() + make_interval(secs => %s) "
                    "FROM (SELECT execution_id FROM execution_leases "
                    "WHERE owner IS NULL OR expires_at < now() ORDER BY expires_at "
                    "LIMIT %s FOR UPDATE SKIP LOCKED) c "
                    "WHERE l.execution_id = c.execution_id RETURNING l.execution_id, l.token",
                    (self.owner, self.lease_seconds, limit),
                )
            ).fetchall()
        return [(str(e), int(t)) for e, t in rows]

    async def renew(self, owned: dict[str, int]) -> set[str]:
        """Extend the leases of ``owned`` (id -> token); return the ids no longer ours."""
        if not owned:
            return set()
        ids = list(owned)
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(
                    "UPDATE execution_leases SET expires_at = now() + make_interval(secs => %s) "
                    "WHERE execution_id = ANY(%s) AND owner = %s RETURNING execution_id, token",
                    (self.lease_seconds, ids, self.owner),
                )
            ).fetchall()
        kept = {str(e) for e, t in rows if owned.get(str(e)) == int(t)}
        return set(ids) - kept

    async def release(self, execution_id: str, token: int) -> None:
        """Give up an execution that ended (its lease row goes)."""
        async with self.pool.connection() as connection:
            await connection.execute(
                "DELETE FROM execution_leases WHERE execution_id = %s AND owner = %s "
                "AND token = %s",
                (execution_id, self.owner, token),
            )

    async def check(self, owned: dict[str, int]) -> set[str]:
        """The ids of ``owned`` whose lease is no longer ours (without renewing)."""
        if not owned:
            return set()
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(
                    "SELECT execution_id, token FROM execution_leases "
                    "WHERE execution_id = ANY(%s) AND owner = %s",
                    (list(owned), self.owner),
                )
            ).fetchall()
        kept = {str(e) for e, t in rows if owned.get(str(e)) == int(t)}
        return set(owned) - kept


class Singleton:
    """A role only one node holds at a time (the scheduler), by a renewed lease row."""

    def __init__(
        self, pool: AsyncConnectionPool, name: str, owner: str, lease_seconds: float = 10.0
    ) -> None:
        self.pool = pool
        self.name = name
        self.owner = owner
        self.lease_seconds = lease_seconds

    async def hold(self) -> bool:
        """Take or renew the role; True while this node holds it."""
        async with self.pool.connection() as connection:
            row = await (
                await connection.execute(
                    "INSERT INTO singleton_leases AS s (name, owner, expires_at) "
                    "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, "
                    "expires_at = EXCLUDED.expires_at "
                    "WHERE s.owner = EXCLUDED.owner OR s.expires_at < now() RETURNING owner",
                    (self.name, self.owner, self.lease_seconds),
                )
            ).fetchone()
        return row is not None

    async def let_go(self) -> None:
        """Give the role up (a graceful stop), so another node takes it at once."""
        async with self.pool.connection() as connection:
            await connection.execute(
                "DELETE FROM singleton_leases WHERE name = %s AND owner = %s",
                (self.name, self.owner),
            )
