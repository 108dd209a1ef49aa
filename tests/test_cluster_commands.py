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


async def test_commands_are_answered_on_their_hint_while_executions_keep_arriving(
    pool: AsyncConnectionPool, pg_url: str, tmp_path: Path
) -> None:
    """Commands are taken on their NOTIFY hint, not at the executor's poll (here a
    minute), while executions keep arriving (hints of their own). The claim loop and the
    command loop used to nap on one event: when the claim loop woke alone (its poll) it
    replaced the event the command loop was waiting on, and the next command waited for
    the command loop's own poll (kill answers: up to 160 ms in the benchmark, 20 ms now)."""
    from runtime.cluster import ClusterPlacement, Commands, Leases
    from runtime.engine import Runtime
    from runtime.store import PostgresStore

    async with executor_node(pool, pg_url, tmp_path, "executor-a", idle_poll=60.0):
        api_placement = ClusterPlacement(Leases(pool, "api"), Commands(pool, "api"))
        async with Runtime(
            data_dir=tmp_path, store=PostgresStore(pg_url), placement=api_placement, recover=False
        ) as api:
            for _ in range(5):
                gate = await api.start(GATE)
                with anyio.fail_after(10):
                    while (await api.get_execution(gate.id)).state.current is not State.PAUSED:  # type: ignore[union-attr]  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                    # executions arriving (claim hints) around the command (its hint)
                    others = [await api.start(GATE) for _ in range(2)]
                    await api.resume(gate.id)
                    for other in others:
                        await api.kill(other.id)
                    assert (await gate.result()).state.current is State.SUCCESS
