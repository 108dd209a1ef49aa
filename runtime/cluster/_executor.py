"""An executor node: it owns executions (leases), runs their actors, answers commands sent
to them from other nodes, and hands their attempts to workers through the task queue."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import structlog
from psycopg_pool import AsyncConnectionPool

from runtime.cluster._commands import (
    COMMANDS_CHANNEL,
    ChangeStatusCommand,
    Command,
    Commands,
    KillCommand,
    MarkCommand,
    NoAnswerError,
    PauseCommand,
    ReplayCommand,
    Reply,
    RestartCommand,
    ResumeCommand,
)
from runtime.cluster._concurrency import CONCURRENCY_CHANNEL, ClusterConcurrency
from runtime.cluster._leases import Leases
from runtime.cluster._queue import QueueAttemptRunner, forget_execution, sweep_expired
from runtime.engine import Execution, ExecutionError, ExecutionNotFoundError, Runtime, State
from runtime.errors import InputValidationError

log = structlog.get_logger("tiercel.executor")


def command_of(action: str, payload: dict[str, Any]) -> Command:
    """The command row for a runtime action."""
    if action == "kill":
        return KillCommand()
    if action == "pause":
        return PauseCommand()
    if action == "resume":
        return ResumeCommand(inputs=dict(payload.get("inputs") or {}))
    if action == "restart":
        return RestartCommand()
    if action == "replay":
        return ReplayCommand(task_run_id=str(payload["task_run_id"]))
    if action == "mark":
        return MarkCommand(task_run_id=str(payload["task_run_id"]), state=State(payload["state"]))
    if action == "change-status":
        return ChangeStatusCommand(state=State(payload["state"]))
    raise ValueError(f"unknown action {action!r}")


class ClusterPlacement:
    """The runtime's view of the cluster (see :class:`runtime.engine.Placement`)."""

    def __init__(
        self, leases: Leases, commands: Commands, executor: Executor | None = None
    ) -> None:
        self.leases = leases
        self.commands = commands
        self.executor = executor

    @property
    def runs_here(self) -> bool:
        return self.executor is not None

    async def claim_new(self, execution_id: str) -> None:
        token = await self.leases.acquire(execution_id)
        if token is None:
            raise ExecutionError(f"execution {execution_id} is owned by another executor")
        assert self.executor is not None
        self.executor.owned[execution_id] = token
        self.executor.revoked.discard(execution_id)

    async def announce(self, execution_id: str) -> None:
        await self.leases.announce(execution_id)

    async def forward(
        self, execution_id: str, action: str, payload: dict[str, Any]
    ) -> Execution | None:
        try:
            reply = await self.commands.send(execution_id, command_of(action, payload))
        except NoAnswerError as exc:
            raise ExecutionError(f"execution {execution_id}: {exc}") from None
        if reply.ok:
            return reply.execution
        if reply.error == "inputs":
            raise InputValidationError(reply.problems)
        if reply.error == "not-found":
            raise ExecutionNotFoundError(reply.message)
        raise ExecutionError(reply.message)


class Executor:
    """Claims executions no one owns, keeps its leases alive, gives up those it lost, and
    answers the commands sent to its executions.

    It gives its runtime the cluster's concurrency gate, so that flow concurrency limits
    hold across every executor (see :mod:`runtime.cluster._concurrency`), and starts the
    QUEUED executions it owns once they are given a slot.
    """

    def __init__(
        self,
        runtime: Runtime,
        pool: AsyncConnectionPool,
        node: str,
        runner: QueueAttemptRunner,
        *,
        lease_seconds: float = 10.0,
        claim_batch: int = 50,
        idle_poll: float = 0.25,
        capacity: int = 10_000,
        reconcile_every: float = 10.0,
    ) -> None:
        self.runtime = runtime
        self.pool = pool
        self.node = node
        self.runner = runner
        runner.fence = self  # attempts are queued only under a lease still held
        self.leases = Leases(pool, node, lease_seconds)
        self.commands = Commands(pool, node)
        self.placement = ClusterPlacement(self.leases, self.commands, self)
        self.lease_seconds = lease_seconds
        self.claim_batch = claim_batch
        self.idle_poll = idle_poll
        self.capacity = capacity
        self.reconcile_every = reconcile_every
        self.concurrency = ClusterConcurrency(pool)
        runtime.concurrency_gate = self.concurrency
        self.owned: dict[str, int] = {}
        """Executions this executor owns, with its fencing token for each."""
        self.revoked: set[str] = set()
        """Executions it gave up: the store drops what they still had pending."""
        self.owner = node
        self._wake = anyio.Event()
        """New executions to claim (a hint)."""
        self._command_wake = anyio.Event()
        """New commands (a hint): an event of its own, so the claim loop, waking first,
        cannot take the hint away from the command loop."""
        self._grant_wake = anyio.Event()
        self._adopting: dict[str, anyio.Event] = {}
        """Executions being taken over (claimed, their actor not yet running)."""
        self._ended: list[str] = []
        self._ended_wake = anyio.Event()
        runtime.on_execution_end(self._on_end)

    def _on_end(self, execution: Execution) -> None:
        if execution.id in self.owned:
            self._ended.append(execution.id)
            self._ended_wake.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Do the executor's work until cancelled."""
        async with anyio.create_task_group() as group:
            await group.start(self.runner.serve)
            group.start_soon(self._listen)
            group.start_soon(self._renew_loop)
            group.start_soon(self._release_loop)
            group.start_soon(self._sweep_loop)
            group.start_soon(self._command_loop)
            group.start_soon(self._reconcile_loop)
            group.start_soon(self._grant_loop)
            log.info("executor started", node=self.node)
            task_status.started()
            await self._claim_loop()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.pool.connection() as connection:
                    await connection.set_autocommit(True)
                    await connection.execute("LISTEN tiercel_executions")
                    await connection.execute(f"LISTEN {COMMANDS_CHANNEL}")
                    await connection.execute(f"LISTEN {CONCURRENCY_CHANNEL}")
                    async for notify in connection.notifies():
                        if notify.channel == CONCURRENCY_CHANNEL:
                            self._grant_wake.set()
                        elif notify.channel == COMMANDS_CHANNEL:
                            self._command_wake.set()
                        else:
                            self._wake.set()
            except Exception as exc:
                log.debug("executor listener reconnecting", error=str(exc))
                await anyio.sleep(1.0)

    async def _nap(self) -> None:
        with anyio.move_on_after(self.idle_poll):
            await self._wake.wait()
        self._wake = anyio.Event()

    async def _nap_for_commands(self) -> None:
        with anyio.move_on_after(self.idle_poll):
            await self._command_wake.wait()
        self._command_wake = anyio.Event()

    async def _claim_loop(self) -> None:
        while True:
            room = self.capacity - len(self.owned)
            try:
                claimed = await self.leases.claim(min(self.claim_batch, room)) if room > 0 else []
            except Exception as exc:  # the database may be away: try again
                log.warning("could not claim executions", error=str(exc))
                await anyio.sleep(1.0)
                continue
            for execution_id, token in claimed:
                self.owned[execution_id] = token
                self.revoked.discard(execution_id)
                if not await self._take_over(execution_id, token):
                    try:  # it ended (its owner died before releasing), or cannot run
                        await self.concurrency.release(execution_id)
                    except Exception as exc:
                        log.warning("could not release a concurrency slot", error=str(exc))
                    await self._release(execution_id)
            if len(claimed) < self.claim_batch:
                await self._nap()

    async def _take_over(self, execution_id: str, token: int) -> bool:
        """Run an execution this node just came to own, rebuilt from its events; False if
        there is nothing to run (it ended). A command for it waits until this is done."""
        adopting = self._adopting.get(execution_id)
        if adopting is not None:  # the other loop is at it: wait for its word
            await adopting.wait()
            return self.runtime.runs(execution_id)
        done = self._adopting[execution_id] = anyio.Event()
        try:
            adopted = await self.runtime.adopt(execution_id)
        except Exception:
            log.exception("cannot take an execution over", execution_id=execution_id)
            adopted = False
        finally:
            del self._adopting[execution_id]
            done.set()
        if adopted:
            log.info("execution taken over", execution_id=execution_id, token=token)
        return adopted

    async def _renew_loop(self) -> None:
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            try:
                lost = await self.leases.renew(dict(self.owned))
            except Exception as exc:
                log.warning("lease renewal failed", error=str(exc))
                continue
            for execution_id in lost:
                self.abandon(execution_id)

    def abandon(self, execution_id: str) -> None:
        """Give an execution up at once (its lease is someone else's now)."""
        if self.owned.pop(execution_id, None) is None:
            return
        self.revoked.add(execution_id)
        self.concurrency.waiting.discard(execution_id)
        log.warning("lost the lease of an execution: giving it up", execution_id=execution_id)
        self.runtime.abandon(execution_id)

    def lost(self, execution_ids: set[str]) -> None:
        """The store found these leases someone else's: nothing was written; give them up."""
        for execution_id in execution_ids:
            self.abandon(execution_id)

    async def hand_over(self) -> None:
        """A graceful stop: make this node's executions claimable by others at once."""
        owned, self.owned = dict(self.owned), {}
        if not owned:
            return
        async with self.pool.connection() as connection:
            await connection.execute(
                "WITH h AS (UPDATE execution_leases SET owner = NULL, expires_at = now() "
                "WHERE execution_id = ANY(%s) AND owner = %s) "
                "SELECT pg_notify('tiercel_executions', '')",
                (list(owned), self.node),
            )
        log.info("executions handed over to other executors", count=len(owned))

    async def _release_loop(self) -> None:
        while True:
            await self._ended_wake.wait()
            self._ended_wake = anyio.Event()
            ended, self._ended = self._ended, []
            if not ended:
                continue
            await self.runtime.store.flush()  # the end is durable before the lease goes
            for execution_id in ended:
                channel = self.runtime._channels.get(execution_id)
                if channel is not None and not channel.ended.is_set():
                    continue  # restarted meanwhile: still ours
                await self._release(execution_id)

    async def _release(self, execution_id: str) -> None:
        token = self.owned.pop(execution_id, None)
        if token is not None:
            await self.leases.release(execution_id, token)
        await forget_execution(self.pool, execution_id)

    async def _sweep_loop(self) -> None:
        while True:
            await anyio.sleep(1.0)
            try:
                await sweep_expired(self.pool)
            except Exception as exc:
                log.warning("sweep failed", error=str(exc))

    async def _grant_loop(self) -> None:
        """Start the QUEUED executions of this node that were given a slot (by a release
        on any executor)."""
        while True:
            with anyio.move_on_after(self.idle_poll):
                await self._grant_wake.wait()
            self._grant_wake = anyio.Event()
            try:
                granted = await self.concurrency.granted()
            except Exception as exc:  # the database may be away: try again
                log.warning("could not read concurrency grants", error=str(exc))
                await anyio.sleep(1.0)
                continue
            for execution_id in granted:
                if self.runtime.grant(execution_id):
                    self.concurrency.waiting.discard(execution_id)
                    log.debug("queued execution dequeued", execution_id=execution_id)

    async def _reconcile_loop(self) -> None:
        """Release concurrency slots that executions which ended did not give back, and
        announce unfinished executions that have no lease (a node died between creating
        one and announcing it)."""
        while True:
            await anyio.sleep(self.reconcile_every)
            try:
                await self.concurrency.reconcile(self.runtime.store, self.lease_seconds)
            except Exception as exc:
                log.warning("concurrency reconciliation failed", error=str(exc))
            try:
                unfinished = await self.runtime.store.unfinished()
                if not unfinished:
                    continue
                async with self.pool.connection() as connection:
                    rows = await (
                        await connection.execute(
                            "SELECT execution_id FROM execution_leases "
                            "WHERE execution_id = ANY(%s)",
                            (unfinished,),
                        )
                    ).fetchall()
                leased = {str(r[0]) for r in rows}
                for execution_id in unfinished:
                    if execution_id not in leased:
                        log.warning(
                            "an execution had no lease: announcing it", execution_id=execution_id
                        )
                        await self.leases.announce(execution_id)
            except Exception as exc:
                log.warning("reconciliation failed", error=str(exc))

    async def _command_loop(self) -> None:
        while True:
            try:
                taken = await self.commands.take(list(self.owned))
            except Exception as exc:  # the database may be away: try again
                log.warning("could not read commands", error=str(exc))
                await anyio.sleep(1.0)
                continue
            for command_id, execution_id, command in taken:
                if execution_id not in self.owned:
                    token = await self.leases.acquire(execution_id)
                    if token is None:
                        await self.commands.give_back(command_id)
                        continue
                    self.owned[execution_id] = token
                    self.revoked.discard(execution_id)
                    # Its owner died: run it here before the command (an ended one is
                    # answered from the store: restart, change of status).
                    await self._take_over(execution_id, token)
                elif execution_id in self._adopting:
                    await self._adopting[execution_id].wait()  # claimed, not running yet
                reply = await self._apply(execution_id, command)
                await self.commands.reply(command_id, reply)
                channel = self.runtime._channels.get(execution_id)
                if channel is None or channel.ended.is_set():
                    await self._release(execution_id)
            if not taken:
                await self._nap_for_commands()

    async def _apply(self, execution_id: str, command: Command) -> Reply:
        runtime = self.runtime
        try:
            with runtime.applying(execution_id):
                if isinstance(command, KillCommand):
                    await runtime.kill(execution_id)
                elif isinstance(command, PauseCommand):
                    await runtime.pause(execution_id)
                elif isinstance(command, ResumeCommand):
                    await runtime.resume(execution_id, command.inputs)
                elif isinstance(command, RestartCommand):
                    return Reply(ok=True, execution=await runtime.restart(execution_id))
                elif isinstance(command, ReplayCommand):
                    handle = await runtime.replay(execution_id, command.task_run_id)
                    if handle.snapshot is not None:
                        token = await self.leases.acquire(handle.id)
                        if token is not None:
                            self.owned[handle.id] = token
                    return Reply(ok=True, execution=handle.snapshot)
                elif isinstance(command, MarkCommand):
                    changed = await runtime.set_task_run_state(
                        execution_id, command.task_run_id, command.state
                    )
                    return Reply(ok=True, execution=changed)
                else:
                    changed = await runtime.change_status(execution_id, command.state)
                    return Reply(ok=True, execution=changed)
        except InputValidationError as exc:
            return Reply(ok=False, message=str(exc), error="inputs", problems=exc.problems)
        except ExecutionNotFoundError as exc:
            return Reply(ok=False, message=str(exc), error="not-found")
        except ExecutionError as exc:
            return Reply(ok=False, message=str(exc), error="execution")
        return Reply(ok=True, execution=await runtime.get_execution(execution_id))
