"""The task queue, executor side: attempts go into ``task_queue``; workers claim them; the
outcome stays in the queue row, and the attempt's end (and its log lines) reach the
executor waiting for it as rows of ``task_results`` addressed to it.

An attempt is one row, named by (task run, attempt number): enqueuing it again (after an
executor took an execution over) finds the row that exists, so an attempt that finished
is never run again and one still running is waited for, not started twice.

Every statement is one round trip (NOTIFY hints ride along as ``pg_notify`` in the same
statement): on these machines a round trip costs more than the work of a task run. Arrays
go as binary parameters (``%b``): dumping a batch of requests as text (bytea escaped)
cost the executor more than the statement itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import msgspec
import structlog
from psycopg_pool import AsyncConnectionPool

from runtime.cluster._codec import decode_outcome, encode
from runtime.engine._services import AttemptOutcome, AttemptRequest
from runtime.model._states import State
from runtime.store._errors import StoreError
from runtime.store._pg_sql import Fence

QUEUED, CLAIMED, DONE, LOST, CANCELLED = 0, 1, 2, 3, 4
KIND_LOG, KIND_END = 1, 2
TASKS_CHANNEL = "tiercel_tasks"
RESULTS_CHANNEL = "tiercel_results"
KILL_HINT = "kill "
"""Prefix of a hint on the tasks channel naming the worker an attempt was killed on."""

log = structlog.get_logger("tiercel.cluster")

_LOG_LINE = msgspec.json.Decoder(tuple[str, str])


class _Waiter:
    __slots__ = ("abandoned", "done", "durable", "error", "on_log", "outcome", "queue_id")

    def __init__(
        self, on_log: Callable[[str, str], None], durable: Callable[[], Awaitable[None]]
    ) -> None:
        self.on_log = on_log
        self.durable = durable
        self.error: Exception | None = None
        self.outcome: AttemptOutcome | None = None
        self.queue_id = -1
        self.abandoned = False
        """No one waits any more (the call was cancelled): not to be registered."""
        self.done = anyio.Event()
        """Set once the attempt ended, or could not be queued (``error``): one event, as
        an executor holds one waiter per running attempt (thousands)."""

    def ended(self, outcome: AttemptOutcome) -> None:
        self.outcome = outcome
        self.done.set()


class QueueAttemptRunner:
    """Runs attempts on the cluster's workers (the engine's ``attempt_runner``).

    Attempts are enqueued in batches (one statement for all that arrived together);
    outcomes and log lines are addressed to this executor (``executor`` column), so each
    poll is one indexed read whatever the number of attempts waiting.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool,
        executor: str = "",
        *,
        idle_poll: float = 0.2,
    ) -> None:
        self.pool = pool
        self.executor = executor or f"runner-{id(self):x}"
        self.fence: Fence | None = None
        """The executor's leases (set by it): an attempt is queued only while its
        execution's lease is still this executor's, with the same token, so an executor
        cut off from the database cannot queue a task run again once another executor has
        taken the execution over, run it, and perhaps finished it."""
        self.idle_poll = idle_poll
        self._waiting: dict[int, _Waiter] = {}
        self._to_enqueue: list[tuple[AttemptRequest, _Waiter]] = []
        self._enqueue_wake = anyio.Event()
        self._wake = anyio.Event()
        self._outcomes: OrderedDict[int, AttemptOutcome] = OrderedDict()
        """Outcomes read before their waiter was registered (a race of a few ms), or for
        attempts no one here waits for any more (an execution given up): bounded."""

    def accepts(self, request: AttemptRequest) -> bool:
        return True

    async def run(
        self,
        request: AttemptRequest,
        on_log: Callable[[str, str], None],
        durable: Callable[[], Awaitable[None]],
    ) -> AttemptOutcome:
        waiter = _Waiter(on_log, durable)
        self._to_enqueue.append((request, waiter))
        self._enqueue_wake.set()
        try:
            await waiter.done.wait()
            if waiter.error is not None:
                raise waiter.error
        finally:
            waiter.abandoned = True
            self._waiting.pop(waiter.queue_id, None)
        assert waiter.outcome is not None
        return waiter.outcome

    async def _enqueue_loop(self) -> None:
        while True:
            await self._enqueue_wake.wait()
            self._enqueue_wake = anyio.Event()
            batch, self._to_enqueue = self._to_enqueue, []
            if not batch:
                continue
            # The task runs' events first (one flush for the whole batch; what arrives
            # meanwhile waits for the next): see AttemptRunner.run.
            try:
                for durable in {id(w.durable): w.durable for _, w in batch}.values():
                    await durable()
            except StoreError as exc:
                for _, waiter in batch:
                    waiter.error = exc
                    waiter.done.set()
                continue
            try:
                rows = await self._insert([request for request, _ in batch])
            except Exception:
                log.exception("could not enqueue attempts; trying again")
                self._to_enqueue[:0] = batch
                await anyio.sleep(0.5)
                self._enqueue_wake.set()
                continue
            found = {(t, a): (i, st, o) for t, a, i, st, o in rows}
            for request, waiter in batch:
                row = found.get((request.task_run_id, request.attempt))
                if row is None:  # fenced out: the execution is being given up here
                    log.info(
                        "attempt not queued: its execution is no longer this executor's",
                        execution_id=request.execution_id,
                        task_run_id=request.task_run_id,
                    )
                    continue
                queue_id, state, outcome = row
                waiter.queue_id = queue_id
                if state == DONE and outcome is not None:
                    waiter.ended(decode_outcome(outcome))
                elif state in (LOST, CANCELLED):
                    waiter.ended(_lost() if state == LOST else _killed())
                else:
                    early = self._outcomes.pop(queue_id, None)
                    if early is not None:
                        waiter.ended(early)
                    elif not waiter.abandoned:  # else its call was cancelled meanwhile
                        self._waiting[queue_id] = waiter

    async def _insert(self, requests: list[AttemptRequest]) -> list[tuple[Any, ...]]:
        fence = self.fence
        if fence is not None:
            requests = [r for r in requests if r.execution_id in fence.owned]
            if not requests:
                return []
        columns = (
            [r.execution_id for r in requests],
            [r.task_run_id for r in requests],
            [r.attempt for r in requests],
            [encode(r) for r in requests],
        )
        async with self.pool.connection() as connection:
            if fence is None:
                cursor = await connection.execute(_INSERT, (self.executor, *columns))
            else:
                tokens = [fence.owned[r.execution_id] for r in requests]
                cursor = await connection.execute(
                    _INSERT_FENCED, (self.executor, *columns, tokens, fence.owner)
                )
            rows = await cursor.fetchall()
        return [(str(t), int(a), int(i), int(st), o) for t, a, i, st, o in rows]

    async def kill(self, task_run_id: str) -> None:
        """Kill a task run's attempts: a queued one is never claimed; a running one is told
        to stop (its worker, woken by a hint, sees it at once, or else at its next
        heartbeat). Never raises: the execution is killed either way; a failure here is
        logged."""
        with anyio.CancelScope(shield=True):  # the execution may end (and stop) meanwhile
            try:
                async with self.pool.connection() as connection:
                    # One UPDATE, so a row claimed meanwhile is re-checked as CLAIMED (and
                    # flagged) rather than missed; those it cancelled end here and now.
                    await connection.execute(
                        "WITH k AS (UPDATE task_queue SET kill = true, "
                        "state = CASE WHEN state = %s THEN %s ELSE state END "
                        "WHERE task_run_id = %s AND state IN (%s, %s) "
                        "RETURNING id, execution_id, executor, worker, state), "
                        "ends AS (INSERT INTO task_results "
                        "(queue_id, execution_id, executor, kind, state, body) "
                        "SELECT id, execution_id, executor, %s, state, '' FROM k "
                        "WHERE state = %s) "
                        f"SELECT pg_notify('{TASKS_CHANNEL}', %s || worker) FROM k "
                        "WHERE state = %s AND worker IS NOT NULL",
                        (
                            QUEUED,
                            CANCELLED,
                            task_run_id,
                            QUEUED,
                            CLAIMED,
                            KIND_END,
                            CANCELLED,
                            KILL_HINT,
                            CLAIMED,
                        ),
                    )
            except Exception:
                log.exception("could not tell workers to kill an attempt", task_run_id=task_run_id)

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Enqueue attempts and deliver their outcomes and log lines, until cancelled."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._listen)
            group.start_soon(self._enqueue_loop)
            task_status.started()
            while True:
                try:
                    await self._poll()  # takes every row there is: the next waits for news
                except Exception as exc:
                    log.warning("could not read attempt outcomes", error=str(exc))
                    await anyio.sleep(0.5)
                with anyio.move_on_after(self.idle_poll):
                    await self._wake.wait()  # set by a hint that came during the poll, too
                self._wake = anyio.Event()

    async def _listen(self) -> None:
        """Wake the poller when a worker says something finished (a hint, never needed)."""
        while True:
            try:
                async with self.pool.connection() as connection:
                    await connection.set_autocommit(True)
                    await connection.execute(f"LISTEN {RESULTS_CHANNEL}")
                    async for notice in connection.notifies():
                        if notice.payload in ("", self.executor):
                            self._wake.set()
            except Exception as exc:
                log.debug("results listener reconnecting", error=str(exc))
                await anyio.sleep(1.0)

    async def _poll(self) -> bool:
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(
                    "DELETE FROM task_results WHERE executor = %s "
                    "RETURNING id, queue_id, kind, state, body",
                    (self.executor,),
                )
            ).fetchall()
        if not rows:
            return False
        rows.sort(key=lambda row: row[0])  # log lines in order, before their attempt's end
        ends = []
        for _, queue_id, kind, state, body in rows:
            if kind == KIND_LOG:
                waiter = self._waiting.get(queue_id)
                if waiter is not None:
                    level, message = _LOG_LINE.decode(body)
                    waiter.on_log(level, message)
            else:
                ends.append((queue_id, state, body))
        for queue_id, state, body in ends:
            if state == DONE:
                result = decode_outcome(body)
            elif state == CANCELLED:
                result = _killed()
            else:
                result = _lost()
            waiter = self._waiting.get(queue_id)
            if waiter is None:
                self._outcomes[queue_id] = result
                while len(self._outcomes) > 10_000:
                    self._outcomes.popitem(last=False)
                continue
            waiter.ended(result)
        return True


_INSERT = (
    "WITH added AS (INSERT INTO task_queue (execution_id, task_run_id, attempt, request, "
    "executor) SELECT r.*, %s FROM unnest(%b::text[], %b::text[], %b::int[], %b::bytea[]) r "
    "ON CONFLICT (task_run_id, attempt) DO UPDATE SET executor = EXCLUDED.executor "
    "RETURNING task_run_id, attempt, id, state, outcome), "
    f"hint AS (SELECT pg_notify('{TASKS_CHANNEL}', '')) "
    "SELECT added.* FROM added, hint"
)
"""Queue attempts (or find them queued already, by an earlier owner of the execution)."""

_INSERT_FENCED = (
    "WITH added AS (INSERT INTO task_queue (execution_id, task_run_id, attempt, request, "
    "executor) SELECT r.execution_id, r.task_run_id, r.attempt, r.request, %s "
    "FROM unnest(%b::text[], %b::text[], %b::int[], %b::bytea[], %b::bigint[]) "
    "AS r(execution_id, task_run_id, attempt, request, token) "
    "JOIN execution_leases l ON l.execution_id = r.execution_id AND l.owner = %s "
    "AND l.token = r.token FOR SHARE OF l "
    "ON CONFLICT (task_run_id, attempt) DO UPDATE SET executor = EXCLUDED.executor "
    "RETURNING task_run_id, attempt, id, state, outcome), "
    f"hint AS (SELECT pg_notify('{TASKS_CHANNEL}', '')) "
    "SELECT added.* FROM added, hint"
)
"""The same, only for executions whose lease is still this executor's, with the token it
holds; the lease row is locked (FOR SHARE) so a takeover committing meanwhile is seen."""


def _killed() -> AttemptOutcome:
    return AttemptOutcome(state=State.KILLED, error="killed")


def _lost() -> AttemptOutcome:
    return AttemptOutcome(
        state=State.FAILED,
        error="the worker running this attempt stopped answering (its lease expired); "
        "the attempt is marked FAILED and retried by the task's retry policy",
    )


async def sweep_expired(pool: AsyncConnectionPool) -> int:
    """Mark attempts whose worker stopped heartbeating as lost; return how many."""
    async with pool.connection() as connection:
        rows = await (
            await connection.execute(
                "WITH lost AS (UPDATE task_queue SET state = %s "
                "WHERE state = %s AND lease_expires < now() "
                "RETURNING id, execution_id, executor), "
                "ends AS (INSERT INTO task_results "
                "(queue_id, execution_id, executor, kind, state, body) "
                "SELECT id, execution_id, executor, %s, %s, '' FROM lost RETURNING executor) "
                f"SELECT count(*), pg_notify('{RESULTS_CHANNEL}', coalesce(executor, '')) "
                "FROM ends GROUP BY executor",
                (LOST, CLAIMED, KIND_END, LOST),
            )
        ).fetchall()
    count = sum(int(row[0]) for row in rows)
    if count:
        log.warning("attempts lost: their workers stopped heartbeating", count=count)
    return count


async def forget_execution(pool: AsyncConnectionPool, execution_id: str) -> None:
    """Delete the queue rows of an execution that ended (its events hold everything).

    An attempt still running then (the execution was killed, and this came before the
    kill's own statement) has its worker told by a hint: the row is gone, so the attempt
    stops at once rather than at the worker's next heartbeat."""
    async with pool.connection() as connection:
        await connection.execute(
            "WITH q AS (DELETE FROM task_queue WHERE execution_id = %s "
            "RETURNING worker, state), "
            "r AS (DELETE FROM task_results WHERE execution_id = %s) "
            f"SELECT pg_notify('{TASKS_CHANNEL}', %s || worker) FROM q "
            "WHERE state = %s AND worker IS NOT NULL",
            (execution_id, execution_id, KILL_HINT, CLAIMED),
        )
