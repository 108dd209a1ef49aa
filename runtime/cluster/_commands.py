"""Commands to executions that run on another executor: a row each, taken by the owner
(or, for an execution no one owns, by any executor, which then owns it), answered with a
reply row the sender polls for."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import structlog
from psycopg_pool import AsyncConnectionPool

from runtime.engine import Execution, State
from runtime.errors import Problem

log = structlog.get_logger("tiercel.cluster")

COMMANDS_CHANNEL = "tiercel_commands"


class KillCommand(msgspec.Struct, tag="kill"):
    """Kill the execution."""


class PauseCommand(msgspec.Struct, tag="pause"):
    """Pause the execution."""


class ResumeCommand(msgspec.Struct, tag="resume"):
    """Resume the execution with ``onResume`` inputs."""

    inputs: dict[str, Any] = msgspec.field(default_factory=dict)


class RestartCommand(msgspec.Struct, tag="restart"):
    """Restart the execution in place."""


class ReplayCommand(msgspec.Struct, tag="replay"):
    """Replay the execution from a task run, as a new execution."""

    task_run_id: str


class MarkCommand(msgspec.Struct, tag="mark"):
    """Change the state of a finished task run."""

    task_run_id: str
    state: State


class ChangeStatusCommand(msgspec.Struct, tag="change-status"):
    """Change the final state of a finished execution."""

    state: State


Command = (
    KillCommand
    | PauseCommand
    | ResumeCommand
    | RestartCommand
    | ReplayCommand
    | MarkCommand
    | ChangeStatusCommand
)


class Reply(msgspec.Struct, kw_only=True):
    """The answer to a command: the execution as the command left it, or why it failed
    (``error``: ``execution``, ``not-found`` or ``inputs``)."""

    ok: bool
    message: str = ""
    error: str | None = None
    problems: list[Problem] = msgspec.field(default_factory=list)
    execution: Execution | None = None


_ENCODER = msgspec.json.Encoder()
_COMMAND = msgspec.json.Decoder(Command)
_REPLY = msgspec.json.Decoder(Reply)


class NoAnswerError(Exception):
    """No executor answered a command in time."""


class Commands:
    """Sending commands (any node) and taking them (executors)."""

    def __init__(self, pool: AsyncConnectionPool, node: str, *, take_after: float = 30.0):
        self.pool = pool
        self.node = node
        self.take_after = take_after
        """Seconds after which a command taken but not answered may be taken again."""

    async def send(self, execution_id: str, command: Command, timeout: float = 30.0) -> Reply:  # noqa: ASYNC109 - the wait is for another process
        """Send ``command`` and wait for its reply.

        :raises NoAnswerError: if no executor answers within ``timeout`` seconds.
        """
        async with self.pool.connection() as connection:
            row = await (
                await connection.execute(
                    "WITH c AS (INSERT INTO commands (execution_id, body) VALUES (%s, %s) "
                    f"RETURNING id) SELECT c.id, pg_notify('{COMMANDS_CHANNEL}', '') FROM c",
                    (execution_id, _ENCODER.encode(command)),
                )
            ).fetchone()
        assert row is not None
        command_id = int(row[0])
        delay = 0.005
        brisk_until = anyio.current_time() + 1.0  # most replies come within tens of ms
        with anyio.move_on_after(timeout):
            while True:
                async with self.pool.connection() as connection:
                    found = await (
                        await connection.execute(
                            "DELETE FROM commands WHERE id = %s AND replied_at IS NOT NULL "
                            "RETURNING reply",
                            (command_id,),
                        )
                    ).fetchone()
                if found is not None:
                    return _REPLY.decode(found[0])
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.02 if anyio.current_time() < brisk_until else 0.1)
        async with self.pool.connection() as connection:
            await connection.execute(
                "DELETE FROM commands WHERE id = %s AND taken_by IS NULL", (command_id,)
            )
        raise NoAnswerError(f"no executor answered within {timeout:g} s (is an executor running?)")

    async def take(self, owned: list[str], limit: int = 50) -> list[tuple[int, str, Command]]:
        """Commands for executions this node owns, or that no one owns (then this node
        must own them before it answers)."""
        async with self.pool.connection() as connection:
            rows = await (
                await connection.execute(
                    "UPDATE commands c SET taken_by = %s, taken_at = now() FROM ("
                    "SELECT id FROM commands x WHERE replied_at IS NULL "
                    "AND (taken_by IS NULL OR taken_at < now() - make_interval(secs => %s)) "
                    "AND (execution_id = ANY(%s) OR NOT EXISTS ("
                    "SELECT 1 FROM execution_leases l WHERE l.execution_id = x.execution_id "
                    "AND l.owner IS NOT NULL AND l.expires_at > now())) "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) t "
                    "WHERE c.id = t.id RETURNING c.id, c.execution_id, c.body",
                    (self.node, self.take_after, owned, limit),
                )
            ).fetchall()
        return [(int(i), str(e), _COMMAND.decode(b)) for i, e, b in rows]

    async def give_back(self, command_id: int) -> None:
        """Let another node take a command (its execution is owned elsewhere)."""
        async with self.pool.connection() as connection:
            await connection.execute(
                "UPDATE commands SET taken_by = NULL, taken_at = NULL WHERE id = %s",
                (command_id,),
            )

    async def reply(self, command_id: int, reply: Reply) -> None:
        """Answer a command."""
        async with self.pool.connection() as connection:
            await connection.execute(
                "UPDATE commands SET reply = %s, replied_at = now() WHERE id = %s",
                (_ENCODER.encode(reply), command_id),
            )
