"""An attempt that may act outside the execution starts only once its start is durable
(regression: a crash within the group-commit window made recovery run the same attempt
number again, so a script's side effect happened twice for its successful attempt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.engine import AttemptStarted, Runtime, State
from runtime.plugins import RunContext, task
from runtime.store import SqliteStore
from runtime.tasks.core.debug import Return
from runtime.tasks.core.scripts import _ScriptTask

seen: dict[str, list[tuple[str, int]]] = {}
"""What each attempt of tests.SeesItsStart found stored when it began."""
store_of_test: list[SqliteStore] = []


@task("tests.SeesItsStart")
async def sees_its_start(ctx: RunContext) -> dict[str, Any]:
    store = store_of_test[0]
    stored = await store.events(ctx.execution_id)  # only what was committed
    seen[ctx.task_run_id] = [
        (e.task_run_id or "", e.attempt or 0) for e in stored if isinstance(e, AttemptStarted)
    ]
    return {"attempt": ctx.attempt}


FLOW = """
id: durable-start
namespace: tests.durability
tasks:
  - id: outside
    type: tests.SeesItsStart
"""


async def test_an_attempt_with_outside_effects_runs_only_once_its_start_is_stored(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "tiercel.db")
    store_of_test[:] = [store]
    async with Runtime(data_dir=tmp_path, store=store) as runtime:
        execution = await runtime.run(FLOW)
    assert execution.state.current is State.SUCCESS
    (task_run,) = execution.task_run_list
    assert seen[task_run.id] == [(task_run.id, 1)]


def test_scripts_act_outside_and_pure_core_tasks_do_not() -> None:
    assert _ScriptTask.effects_outside
    assert not Return.effects_outside
