"""This process's part in a cluster: which roles it plays and the pieces that play them.

Without a PostgreSQL store there is no cluster: the one process does everything (role
``all``). With one, roles can be split across processes and machines:

- ``api``: the HTTP API; creates executions (an executor takes them) and forwards
  commands to the executor running each one.
- ``executor``: owns executions by lease and runs their actors; their attempts go to
  workers through the task queue (or run in this process when it is a worker too).
- ``worker``: claims attempts from the queue and runs them.
- ``scheduler``: fires schedules; one node at a time holds the role.

Flow triggers run on one executor node at a time too (the role ``flow-triggers``), which
reads every executor's ends from the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import structlog
from psycopg_pool import AsyncConnectionPool

from runtime.cluster import (
    ClusterError,
    ClusterPlacement,
    Commands,
    Executor,
    Leases,
    QueueAttemptRunner,
    Singleton,
    Worker,
    node_id,
    open_pool,
)
from runtime.engine import Runtime
from runtime.errors import TiercelError
from runtime.server.config import ALL_ROLES, ServerConfig
from runtime.store import Store

log = structlog.get_logger("tiercel.server")


class NodeStartError(TiercelError):
    """The node cannot play its roles (no PostgreSQL for split roles, or it is down)."""


def is_postgres(url: str | None) -> bool:
    """Whether a store URL names PostgreSQL."""
    return url is not None and url.startswith(("postgresql://", "postgres://"))


class ClusterNode:
    """The cluster pieces of one process (none without PostgreSQL)."""

    def __init__(
        self, config: ServerConfig, roles: set[str], pool: AsyncConnectionPool | None
    ) -> None:
        self.config = config
        self.roles = roles
        self.pool = pool
        self.id = node_id("+".join(sorted(roles)) if roles != ALL_ROLES else "all")
        self.executor: Executor | None = None
        self.worker: Worker | None = None
        self._runner: QueueAttemptRunner | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, config: ServerConfig, roles: set[str]) -> AsyncIterator[ClusterNode]:
        """The node for ``roles``, connected to the cluster's database if there is one.

        :raises NodeStartError: if the roles need PostgreSQL and there is none, or it is down.
        """
        if not is_postgres(config.store):
            if roles != ALL_ROLES:
                raise NodeStartError(
                    f"role {','.join(sorted(roles))} needs a PostgreSQL store shared by the "
                    "cluster (--store postgresql://...); with SQLite one process does all"
                )
            yield cls(config, roles, None)
            return
        assert config.store is not None
        try:
            pool = await open_pool(
                config.store,
                max_size=config.pool_size,
                idle_transaction_limit=config.lease_seconds / 2,
            )
        except ClusterError as exc:
            raise NodeStartError(str(exc)) from None
        try:
            yield cls(config, roles, pool)
        finally:
            await pool.close()

    def attempt_runner(self) -> QueueAttemptRunner | None:
        """Where attempts run: the queue, for an executor that is not a worker itself."""
        if self.pool is not None and "executor" in self.roles:
            self._runner = QueueAttemptRunner(self.pool, self.id)
            if "worker" not in self.roles:
                return self._runner
        return None

    def placement(self) -> ClusterPlacement | None:
        """For a node that runs no executions: create them for executors, forward commands."""
        if self.pool is None or "executor" in self.roles:
            return None
        return ClusterPlacement(Leases(self.pool, self.id), Commands(self.pool, self.id))

    def attach(self, runtime: Runtime) -> None:
        """Give the runtime its executor (it needs the runtime to exist first)."""
        if self.pool is None or "executor" not in self.roles:
            return
        runner = self._runner or QueueAttemptRunner(self.pool, self.id)
        self.executor = Executor(
            runtime, self.pool, self.id, runner, lease_seconds=self.config.lease_seconds
        )
        runtime.placement = self.executor.placement
        from runtime.store._postgres import PostgresStore

        if isinstance(runtime.store, PostgresStore):
            runtime.store.fence = self.executor  # events only for executions it owns

    async def start(self, group: anyio.abc.TaskGroup, store: Store) -> None:
        """Start the executor's and the worker's loops (the roles this node plays)."""
        if self.executor is not None:
            await group.start(self.executor.run)
        if self.pool is not None and "worker" in self.roles:
            await self.start_worker(group, store)

    async def start_worker(self, group: anyio.abc.TaskGroup, store: Store) -> Worker:
        """Start claiming attempts."""
        assert self.pool is not None
        self.worker = Worker(
            self.pool,
            store,
            self.config.data,
            concurrency=self.config.worker_concurrency,
            lease_seconds=self.config.lease_seconds,
            name=self.id,
        )
        await group.start(self.worker.run)
        return self.worker

    async def lead(self, role_name: str, run: Callable[..., Coroutine[Any, Any, None]]) -> None:
        """Run ``run`` (started with ``task_status``) while this node holds the role
        ``role_name``: one node of the cluster at a time (the scheduler, the Flow
        triggers). A node that cannot renew the role stops at once: after the lease
        expires another node takes it."""
        assert self.pool is not None
        role = Singleton(self.pool, role_name, self.id, self.config.lease_seconds)
        period = self.config.lease_seconds / 3
        try:
            while True:
                if not await self._hold(role):
                    await anyio.sleep(period)
                    continue
                log.info("this node now holds a role", role=role_name, node=self.id)
                async with anyio.create_task_group() as group:
                    await group.start(run)
                    while await self._hold(role):  # noqa: ASYNC110 - renewing is the point
                        await anyio.sleep(period)
                    log.warning("lost a role", role=role_name, node=self.id)
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await role.let_go()

    async def _hold(self, role: Singleton) -> bool:
        try:
            return await role.hold()
        except Exception as exc:  # the database is away: not held, as far as we can know
            log.warning("cannot renew a role", role=role.name, node=self.id, error=str(exc))
            return False

    async def stopping(self, runtime: Runtime | None, *, force: bool) -> None:
        """A graceful stop begins: a worker finishes what it runs (within the deadline); an
        executor whose attempts run on workers leaves them running and lets other
        executors take its executions over."""
        if self.worker is not None:
            await self.worker.stop(0.0 if force else self.config.shutdown_timeout)
        executor = self.executor
        if (
            executor is not None
            and runtime is not None
            and self._runner is runtime.services.attempt_runner
        ):
            runtime.abort()  # nothing to wait for here: the attempts run on workers

    async def released(self) -> None:
        """After the runtime stopped: hand this executor's executions to the others at once."""
        if self.executor is not None:
            await self.executor.hand_over()
