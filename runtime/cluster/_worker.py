"""A worker: claims attempts from the task queue, runs them, reports their outcomes.

Each claim is a lease the worker renews by heartbeat (which also brings kill requests; a
NOTIFY hint naming the worker brings the heartbeat forward);
an outcome is accepted only while the claim is still the worker's (a late one, after the
lease expired and the attempt was declared lost, is rejected and logged).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec
import structlog
from psycopg_pool import AsyncConnectionPool

from actors import Clock, RealClock
from runtime.cluster._codec import decode_request, encode
from runtime.cluster._queue import (
    CANCELLED,
    CLAIMED,
    DONE,
    KILL_HINT,
    KIND_END,
    KIND_LOG,
    QUEUED,
    RESULTS_CHANNEL,
    TASKS_CHANNEL,
)
from runtime.engine._hooks import ExecutionHooks
from runtime.engine._services import AttemptOutcome, AttemptRequest
from runtime.engine._taskrun import run_attempt
from runtime.errors import FlowValidationError
from runtime.expressions import ExpressionEngine
from runtime.model import Flow, Task
from runtime.model._states import State
from runtime.parsing import parse_flow
from runtime.statestore import StoreStateStore
from runtime.storage import StorageError, storage_for
from runtime.store import Store
from runtime.tasks._api import RunContext, StateStore, TaskFailedError

log = structlog.get_logger("tiercel.worker")

_LOG_ENCODER = msgspec.json.Encoder()


def node_id(role: str) -> str:
    """A name for this process in the cluster: host, pid and a random suffix."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class _Claimed:
    __slots__ = (
        "accepted",
        "claim",
        "finished",
        "killed",
        "outcome_ready",
        "queue_id",
        "request",
        "scope",
    )

    def __init__(self, queue_id: int, claim: int, request: AttemptRequest) -> None:
        self.queue_id = queue_id
        self.claim = claim
        self.request = request
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self.accepted = False
        self.killed = False
        self.outcome_ready = False


class WorkerContext(RunContext):
    """The run context of an attempt on a worker: the same services, from afar."""

    def __init__(self, worker: Worker, claimed: _Claimed) -> None:
        request = claimed.request
        self.worker = worker
        self.claimed = claimed
        self.execution_id = request.execution_id
        self.task_run_id = request.task_run_id
        self.task_id = request.task_id
        self.attempt = request.attempt
        self.namespace = request.namespace
        self.flow_id = request.flow_id
        self.value = request.value
        self.metrics: list[tuple[str, str, float, dict[str, str]]] = []
        self.warned = False
        self.labels: dict[str, str] = {}
        self.hooks = ExecutionHooks(storage_for(worker.data_dir), worker.clock, request.namespace)
        self.hooks.errors.extend(request.error_logs)
        self._dir: Path | None = None

    def render(self, value: Any) -> Any:
        return self.worker.expressions.render_value(
            value, self.claimed.request.variables, self.hooks
        )

    def render_text(self, template: str) -> str:
        return self.worker.expressions.render(template, self.claimed.request.variables, self.hooks)

    def render_typed(self, template: str) -> Any:
        return self.worker.expressions.render_typed(
            template, self.claimed.request.variables, self.hooks
        )

    def log(self, level: str, message: str) -> None:
        self.worker.log_line(self.claimed, level.upper(), message)

    def metric(
        self, name: str, kind: str, value: float, tags: Mapping[str, str] | None = None
    ) -> None:
        if kind not in ("counter", "timer"):
            raise ValueError(f"metric type must be counter or timer, got {kind!r}")
        self.metrics.append((name, kind, float(value), dict(tags or {})))

    def warn(self) -> None:
        self.warned = True

    async def sleep(self, seconds: float) -> None:
        await self.worker.clock.sleep(seconds)

    def working_dir(self) -> Path:
        if self._dir is None:
            self._dir = (
                self.worker.data_dir
                / "work"
                / self.execution_id
                / f"{self.task_run_id}-{self.attempt}-{self.worker.id}"
            )
            self._dir.mkdir(parents=True, exist_ok=True)
        return self._dir

    async def put_file(self, source: Path, name: str) -> str:
        return await storage_for(self.worker.data_dir).put_task_file(
            self.namespace, self.flow_id, self.execution_id, self.task_run_id, name, source
        )

    async def get_file(self, uri: str, target: Path) -> None:
        try:
            await storage_for(self.worker.data_dir).copy_out(uri, target)
        except StorageError as exc:
            raise TaskFailedError(str(exc)) from None

    def set_labels(self, labels: Mapping[str, str]) -> None:
        self.labels.update(labels)

    async def resume_execution(self, execution_id: str, inputs: Mapping[str, Any]) -> None:
        raise TaskFailedError(
            "resuming another execution from a worker is not supported yet; "
            "run this task on an executor"
        )

    def state_store(self) -> StateStore:
        return StoreStateStore(self.worker.store, self.namespace, self.worker.clock)

    def cleanup(self) -> None:
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)


_CYCLE = (
    # log lines of running attempts, addressed to the executor waiting for each
    "WITH lines AS (INSERT INTO task_results (queue_id, execution_id, executor, kind, body) "
    "SELECT q.id, q.execution_id, q.executor, %(log)s, v.body "
    "FROM unnest(%(line_ids)b::bigint[], %(line_bodies)b::bytea[]) WITH ORDINALITY "
    "AS v(queue_id, body, n) JOIN task_queue q ON q.id = v.queue_id ORDER BY v.n), "
    # outcomes, accepted only while the claim is still this worker's
    "done AS (UPDATE task_queue q SET state = %(done)s, outcome = v.outcome "
    "FROM unnest(%(ids)b::bigint[], %(claims)b::int[], %(outcomes)b::bytea[]) "
    "AS v(id, claim, outcome) "
    "WHERE q.id = v.id AND q.claim = v.claim AND q.worker = %(worker)s "
    "AND q.state = %(claimed)s RETURNING q.id, q.execution_id, q.executor, q.outcome), "
    "ends AS (INSERT INTO task_results (queue_id, execution_id, executor, kind, state, body) "
    "SELECT id, execution_id, executor, %(end)s, %(done)s, outcome FROM done "
    "RETURNING queue_id, executor), "
    # and the next attempts, as many as there is room for
    "taken AS (UPDATE task_queue q SET state = %(claimed)s, worker = %(worker)s, "
    "claim = q.claim + 1, lease_expires = now() + make_interval(secs => %(lease)s) "
    "FROM (SELECT id FROM task_queue WHERE state = %(queued)s ORDER BY id LIMIT %(room)s "
    "FOR UPDATE SKIP LOCKED) c WHERE q.id = c.id "
    "RETURNING q.id, q.claim, q.request), "
    f"hints AS (SELECT pg_notify('{RESULTS_CHANNEL}', coalesce(executor, '')) "
    "FROM (SELECT DISTINCT executor FROM ends) e) "
    "SELECT 0, queue_id, 0, NULL::bytea FROM ends "
    "UNION ALL SELECT 1, id, claim, request FROM taken "
    "UNION ALL SELECT 2, 0, 0, NULL FROM hints"
)
"""One round trip for everything a worker tells the queue: log lines, outcomes (each with
its end row for the executor, and a wake-up hint), and its next claims."""


class Worker:
    """Runs up to ``concurrency`` attempts at once from the cluster's task queue."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        store: Store,
        data_dir: Path,
        *,
        concurrency: int = 8,
        lease_seconds: float = 10.0,
        heartbeat_seconds: float = 0.25,
        idle_poll: float = 0.5,
        log_interval: float = 0.05,
        clock: Clock | None = None,
        name: str | None = None,
    ) -> None:
        self.pool = pool
        self.store = store
        self.data_dir = data_dir
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.idle_poll = idle_poll
        self.log_interval = log_interval
        """Seconds a running attempt's log lines may wait to travel with other work."""
        self.clock = clock or RealClock()
        self.id = name or node_id("worker")
        self.expressions = ExpressionEngine()
        self._running: dict[int, _Claimed] = {}
        self._logs: list[tuple[int, bytes]] = []
        self._finishing: list[tuple[_Claimed, AttemptOutcome]] = []
        self._work = anyio.Event()
        """Set when the queue should hear from this worker: an outcome, room for another
        attempt, new attempts announced, a stop."""
        self._drained = anyio.Event()
        self._kill_hint = anyio.Event()
        """Set by a hint that an attempt running here was killed: heartbeat now."""
        self._flows: dict[tuple[str, str, int], Flow] = {}
        self.completed = 0
        self.rejected = 0
        self._stopping = False

    # -- the loop ----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Claim and run attempts until cancelled (running ones are then abandoned: their
        leases expire and they are retried elsewhere)."""
        log.info("worker started", worker=self.id, concurrency=self.concurrency)
        async with anyio.create_task_group() as group:
            group.start_soon(self._listen)
            group.start_soon(self._heartbeat)
            task_status.started()
            await self._pump(group)

    def _room(self) -> int:
        if self._stopping:
            return 0
        return self.concurrency - len(self._running) + len(self._finishing)

    async def _pump(self, group: anyio.abc.TaskGroup) -> None:
        idle = False  # the last claim found less than it asked for: no need to ask again
        # before a hint (NOTIFY), an outcome or the poll interval
        while True:
            self._work = anyio.Event()
            if not self._finishing and (idle or self._room() <= 0):
                if self._logs:
                    timeout = self.log_interval
                elif self._room() > 0:
                    timeout = self.idle_poll
                else:
                    timeout = math.inf  # full: the next outcome (or a stop) wakes this loop
                with anyio.move_on_after(timeout):
                    await self._work.wait()
            await anyio.lowlevel.checkpoint()  # attempts ending in this same tick join the batch
            room = self._room()
            outcomes, self._finishing = self._finishing, []
            lines, self._logs = self._logs, []
            if not outcomes and not lines and room <= 0:
                continue
            try:
                accepted, claimed = await self._cycle(lines, outcomes, max(room, 0))
            except Exception as exc:  # the database may be away: keep everything, try again
                log.warning("could not reach the task queue; trying again", error=str(exc))
                self._finishing[:0] = outcomes
                self._logs[:0] = lines
                await anyio.sleep(1.0)
                continue
            for item, _ in outcomes:
                item.accepted = item.queue_id in accepted
                item.finished.set()
            for item in claimed:
                self._running[item.queue_id] = item
                group.start_soon(self._execute, item)
            idle = len(claimed) < room  # the queue ran dry: wait for a hint or the poll

    async def _cycle(
        self,
        lines: list[tuple[int, bytes]],
        outcomes: list[tuple[_Claimed, AttemptOutcome]],
        room: int,
    ) -> tuple[set[int], list[_Claimed]]:
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(
                    _CYCLE,
                    {
                        "log": KIND_LOG,
                        "end": KIND_END,
                        "queued": QUEUED,
                        "claimed": CLAIMED,
                        "done": DONE,
                        "line_ids": [queue_id for queue_id, _ in lines],
                        "line_bodies": [body for _, body in lines],
                        "ids": [item.queue_id for item, _ in outcomes],
                        "claims": [item.claim for item, _ in outcomes],
                        "outcomes": [encode(outcome) for _, outcome in outcomes],
                        "worker": self.id,
                        "lease": self.lease_seconds,
                        "room": room,
                    },
                )
            ).fetchall()
        accepted = {int(queue_id) for kind, queue_id, _, _ in rows if kind == 0}
        claimed = [
            _Claimed(int(queue_id), int(claim), decode_request(bytes(request)))
            for kind, queue_id, claim, request in rows
            if kind == 1
        ]
        return accepted, claimed

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a graceful stop's deadline
        """Claim nothing more; give running attempts ``timeout`` seconds to finish (those
        still running then are abandoned: their leases expire, they are retried)."""
        self._stopping = True
        self._work.set()
        with anyio.move_on_after(timeout):
            while self._running:
                self._drained = anyio.Event()
                await self._drained.wait()
        if self._running:
            log.warning(
                "stopping with attempts still running: they will be retried elsewhere",
                worker=self.id,
                running=len(self._running),
            )
            for item in list(self._running.values()):
                item.scope.cancel()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.pool.connection() as connection:
                    await connection.execute(f"LISTEN {TASKS_CHANNEL}")
                    async for notice in connection.notifies():
                        if notice.payload.startswith(KILL_HINT):
                            if notice.payload[len(KILL_HINT) :] == self.id:
                                self._kill_hint.set()
                        else:
                            self._work.set()
            except Exception as exc:
                log.debug("task listener reconnecting", error=str(exc))
                await anyio.sleep(1.0)

    async def _heartbeat(self) -> None:
        """Renew the leases of running attempts; stop those killed or no longer ours."""
        while True:
            with anyio.move_on_after(self.heartbeat_seconds):
                await self._kill_hint.wait()
            self._kill_hint = anyio.Event()
            ids = list(self._running)
            if not ids:
                continue
            try:
                async with self.pool.connection() as connection:
                    rows = await (
                        await connection.execute(
                            "UPDATE task_queue "
                            "SET lease_expires = now() + make_interval(secs => %s) "
                            "WHERE id = ANY(%s) AND worker = %s AND state = %s "
                            "RETURNING id, claim, kill",
                            (self.lease_seconds, ids, self.id, CLAIMED),
                        )
                    ).fetchall()
            except Exception as exc:
                log.warning("heartbeat failed", worker=self.id, error=str(exc))
                continue
            alive = {int(i): (int(c), bool(k)) for i, c, k in rows}
            for queue_id in ids:
                item = self._running.get(queue_id)
                if item is None or item.finished.is_set() or item.outcome_ready:
                    continue  # it ended meanwhile (its outcome is on its way)
                found = alive.get(queue_id)
                if found is None or found[0] != item.claim:
                    log.warning(
                        "attempt no longer this worker's (its lease expired, or its "
                        "execution ended): stopping it",
                        worker=self.id,
                        task_run_id=item.request.task_run_id,
                        attempt=item.request.attempt,
                    )
                    item.scope.cancel()
                elif found[1]:
                    log.info(
                        "attempt killed",
                        worker=self.id,
                        execution_id=item.request.execution_id,
                        task_run_id=item.request.task_run_id,
                    )
                    item.killed = True
                    item.scope.cancel()

    def log_line(self, claimed: _Claimed, level: str, message: str) -> None:
        """Queue a log line of an attempt (it travels with the worker's next statement)."""
        self._logs.append((claimed.queue_id, _LOG_ENCODER.encode((level, message))))

    # -- one attempt -------------------------------------------------------------------

    async def _task_of(self, request: AttemptRequest) -> Task:
        key = (request.namespace, request.flow_id, request.flow_revision)
        flow = self._flows.get(key)
        if flow is None:
            for stored in await self.store.flow_revisions(request.namespace, request.flow_id):
                if stored.revision == request.flow_revision:
                    flow = parse_flow(
                        stored.source, f"{stored.namespace}.{stored.id}@{stored.revision}"
                    )
                    flow.revision = stored.revision
                    self._flows[key] = flow
                    break
        if flow is None:
            raise TaskFailedError(
                f"flow {request.namespace}.{request.flow_id} revision {request.flow_revision} "
                "is not in the store"
            )
        task = flow.find_task(request.task_id)
        if task is None:
            raise TaskFailedError(f"flow {flow.uid} has no task {request.task_id!r}")
        return task

    async def _execute(self, item: _Claimed) -> None:
        request = item.request
        bound = log.bind(
            worker=self.id,
            execution_id=request.execution_id,
            task_run_id=request.task_run_id,
            attempt=request.attempt,
        )
        context = WorkerContext(self, item)
        outcome: AttemptOutcome | None = None
        try:
            with item.scope:
                try:
                    task = await self._task_of(request)
                except (TaskFailedError, FlowValidationError) as exc:
                    outcome = AttemptOutcome(state=State.FAILED, error=str(exc))
                else:
                    outcome = await run_attempt(task, context, self.clock, lambda: context.metrics)
                    if context.labels:
                        outcome.labels = dict(context.labels)
            if outcome is None:
                if item.killed:  # say it stopped: its executor may wait for that
                    with anyio.CancelScope(shield=True):
                        await self._mark_killed(item)
                return  # or the lease was lost: the executor decides what that means
            with anyio.CancelScope(shield=True):
                item.outcome_ready = True
                self._finishing.append((item, outcome))
                self._work.set()
                await item.finished.wait()
            if item.accepted:
                self.completed += 1
            else:
                self.rejected += 1
                bound.warning("late result rejected: the attempt is no longer this worker's")
        finally:
            context.cleanup()
            self._running.pop(item.queue_id, None)
            self._work.set()
            if not self._running:
                self._drained.set()

    async def _mark_killed(self, item: _Claimed) -> None:
        try:
            async with self.pool.connection() as connection:
                await connection.execute(
                    "WITH k AS (UPDATE task_queue SET state = %s "
                    "WHERE id = %s AND worker = %s AND claim = %s AND state = %s "
                    "RETURNING id, execution_id, executor), "
                    "ends AS (INSERT INTO task_results "
                    "(queue_id, execution_id, executor, kind, state, body) "
                    "SELECT id, execution_id, executor, %s, %s, '' FROM k RETURNING executor) "
                    f"SELECT pg_notify('{RESULTS_CHANNEL}', coalesce(executor, '')) FROM ends",
                    (CANCELLED, item.queue_id, self.id, item.claim, CLAIMED, KIND_END, CANCELLED),
                )
        except Exception as exc:
            log.warning("could not record a killed attempt", error=str(exc))
