"""Commands to executions whose executor died: the node that takes the command runs the
execution first, then applies it (regression: it answered "execution ... is PAUSED; it
takes no commands" when its command loop got there before its claim loop)."""

from __future__ import annotations

from pathlib import Path

import anyio
from psycopg_pool import AsyncConnectionPool

from runtime.engine import State
from tests import test_cluster_concurrency, test_cluster_queue

pg_url = test_cluster_queue.pg_url
pool = test_cluster_queue.pool
executor_node = test_cluster_concurrency.executor_node

GATE = """
id: gate
namespace: cluster.commands
tasks:
  - {id: wait, type: Pause}
  - {id: after, type: Return, format: resumed}
"""


async def test_a_command_to_an_execution_whose_owner_died_takes_it_over_first(
    pool: AsyncConnectionPool, pg_url: str, tmp_path: Path
) -> None:
    # executor-a claims nothing by itself (capacity 0): only its command loop can reach
    # the execution, the path that used to answer without running it.
    async with executor_node(pool, pg_url, tmp_path, "executor-a", capacity=0) as (a, _):
        with anyio.CancelScope() as crash:
            async with executor_node(pool, pg_url, tmp_path, "executor-b") as (b, _):
                handle = await b.start(GATE)
                with anyio.fail_after(10):
                    await handle.wait_for_state(State.PAUSED)
                await b.store.flush()
                crash.cancel()  # executor-b dies: no stop, no hand-over
        async with pool.connection() as connection:  # its leases run out
            await connection.execute(
                "UPDATE execution_leases SET expires_at = now() - interval '1 second' "
                "WHERE owner = 'executor-b'"
            )
        with anyio.fail_after(20):
            await a.resume(handle.id)
            finished = await (await a.lookup(handle.id)).result()
    assert finished.state.current is State.SUCCESS
    after = next(t for t in finished.task_run_list if t.task_id == "after")
    assert after.outputs == {"value": "resumed"}
