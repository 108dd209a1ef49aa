"""The task queue, executor side: attempts go into ``task_queue``; workers claim them; the
outcome comes back in the same row, and log lines through ``task_results``.

An attempt is one row, named by (task run, attempt number): enqueuing it again (after an
executor took an execution over) finds the row that exists, so an attempt that finished
is never run again and one still running is waited for, not started twice.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.abc
import msgspec
import structlog
from psycopg_pool import AsyncConnectionPool

from runtime.cluster._codec import decode_outcome, encode
from runtime.engine._services import AttemptOutcome, AttemptRequest
from runtime.model._states import State

QUEUED, CLAIMED, DONE, LOST, CANCELLED = 0, 1, 2, 3, 4
KIND_LOG = 1
TASKS_CHANNEL = "tiercel_tasks"
RESULTS_CHANNEL = "tiercel_results"

log = structlog.get_logger("tiercel.cluster")

_LOG_LINE = msgspec.json.Decoder(tuple[str, str])


class _Waiter:
    __slots__ = ("done", "on_log", "outcome")

    def __init__(self, on_log: Callable[[str, str], None]) -> None:
        self.on_log = on_log
        self.outcome: AttemptOutcome | None = None
        self.done = anyio.Event()


class QueueAttemptRunner:
    """Runs attempts on the cluster's workers (the engine's ``attempt_runner``)."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        idle_poll: float = 0.2,
        busy_poll: float = 0.002,
    ) -> None:
        self.pool = pool
        self.idle_poll = idle_poll
        self.busy_poll = busy_poll
        self._waiting: dict[int, _Waiter] = {}
        self._wake = anyio.Event()

    def accepts(self, request: AttemptRequest) -> bool:
        return True

    async def run(
        self, request: AttemptRequest, on_log: Callable[[str, str], None]
    ) -> AttemptOutcome:
        queue_id, state, outcome = await self._enqueue(request)
        if state == DONE and outcome is not None:
            return decode_outcome(outcome)
        if state == LOST:
            return _lost()
        waiter = _Waiter(on_log)
        self._waiting[queue_id] = waiter
        self._wake.set()
        try:
            await waiter.done.wait()
        finally:
            self._waiting.pop(queue_id, None)
        assert waiter.outcome is not None
        return waiter.outcome

    async def _enqueue(self, request: AttemptRequest) -> tuple[int, int, bytes | None]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "INSERT INTO task_queue (execution_id, task_run_id, attempt, request) "
                "VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (task_run_id, attempt) DO UPDATE SET attempt = EXCLUDED.attempt "
                "RETURNING id, state, outcome",
                (request.execution_id, request.task_run_id, request.attempt, encode(request)),
            )
            row = await cursor.fetchone()
            await connection.execute(f"NOTIFY {TASKS_CHANNEL}")
        assert row is not None
        return int(row[0]), int(row[1]), row[2]

    async def kill(self, task_run_id: str) -> None:
        """Kill a task run's attempts: a queued one is never claimed; a running one is told
        to stop (its worker sees it at its next heartbeat). Never raises: the execution is
        killed either way; a failure here is logged."""
        with anyio.CancelScope(shield=True):  # the execution may end (and stop) meanwhile
            try:
                async with self.pool.connection() as connection:
                    await connection.execute(
                        "UPDATE task_queue SET kill = true, "
                        "state = CASE WHEN state = %s THEN %s ELSE state END "
                        "WHERE task_run_id = %s AND state IN (%s, %s)",
                        (QUEUED, CANCELLED, task_run_id, QUEUED, CLAIMED),
                    )
            except Exception:
                log.exception("could not tell workers to kill an attempt", task_run_id=task_run_id)

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver outcomes and log lines to waiting attempts, until cancelled."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._listen)
            task_status.started()
            while True:
                if not self._waiting:
                    with anyio.move_on_after(self.idle_poll):
                        await self._wake.wait()
                    self._wake = anyio.Event()
                    continue
                delivered = await self._poll()
                if not delivered:
                    with anyio.move_on_after(self.idle_poll if not self._waiting else 0.05):
                        await self._wake.wait()
                    self._wake = anyio.Event()
                else:
                    await anyio.sleep(self.busy_poll)

    async def _listen(self) -> None:
        """Wake the poller when a worker says something finished (a hint, never needed)."""
        while True:
            try:
                async with self.pool.connection() as connection:
                    await connection.set_autocommit(True)
                    await connection.execute(f"LISTEN {RESULTS_CHANNEL}")
                    async for _ in connection.notifies():
                        self._wake.set()
            except Exception as exc:
                log.debug("results listener reconnecting", error=str(exc))
                await anyio.sleep(1.0)

    async def _poll(self) -> bool:
        ids = list(self._waiting)
        async with self.pool.connection() as connection:
            logs = await (
                await connection.execute(
                    "DELETE FROM task_results WHERE queue_id = ANY(%s) "
                    "RETURNING queue_id, id, body",
                    (ids,),
                )
            ).fetchall()
            ended = await (
                await connection.execute(
                    "SELECT id, state, outcome FROM task_queue "
                    "WHERE id = ANY(%s) AND state IN (%s, %s, %s)",
                    (ids, DONE, LOST, CANCELLED),
                )
            ).fetchall()
        for queue_id, _, body in sorted(logs, key=lambda row: row[1]):
            waiter = self._waiting.get(queue_id)
            if waiter is not None:
                level, message = _LOG_LINE.decode(body)
                waiter.on_log(level, message)
        for queue_id, state, outcome in ended:
            waiter = self._waiting.get(queue_id)
            if waiter is None:
                continue
            if state == DONE and outcome is not None:
                waiter.outcome = decode_outcome(outcome)
            elif state == CANCELLED:
                waiter.outcome = AttemptOutcome(state=State.KILLED, error="killed")
            else:
                waiter.outcome = _lost()
            waiter.done.set()
        return bool(logs or ended)


def _lost() -> AttemptOutcome:
    return AttemptOutcome(
        state=State.FAILED,
        error="the worker running this attempt stopped answering (its lease expired); "
        "the attempt is marked FAILED and retried by the task's retry policy",
    )


async def sweep_expired(pool: AsyncConnectionPool) -> int:
    """Mark attempts whose worker stopped heartbeating as lost; return how many."""
    async with pool.connection() as connection:
        cursor = await connection.execute(
            "UPDATE task_queue SET state = %s WHERE state = %s AND lease_expires < now()",
            (LOST, CLAIMED),
        )
        count = cursor.rowcount
        if count:
            await connection.execute(f"NOTIFY {RESULTS_CHANNEL}")
    if count:
        log.warning("attempts lost: their workers stopped heartbeating", count=count)
    return count


async def forget_execution(pool: AsyncConnectionPool, execution_id: str) -> None:
    """Delete the queue rows of an execution that ended (its events hold everything)."""
    async with pool.connection() as connection:
        await connection.execute("DELETE FROM task_queue WHERE execution_id = %s", (execution_id,))
        await connection.execute(
            "DELETE FROM task_results WHERE execution_id = %s", (execution_id,)
        )
