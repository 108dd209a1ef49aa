"""The process the crash test kills: runs a planned set of executions on a SQLite store.

``python -m tests.crash.worker DATA_DIR FLOWS_DIR`` starts whatever the plan names that
the store does not have yet, resumes the rest (recovery), and exits 0 once every planned
execution has ended. It is safe to kill at any moment and run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import anyio

from runtime.engine import Runtime
from runtime.flows import FlowRepository
from runtime.logging import configure_logging

PLAN = {"seq": 2, "par": 2, "loop": 2, "retry": 2, "pause": 2, "files": 2}


def load_plan(data: Path) -> list[tuple[str, str]]:
    """(execution id, flow id) pairs, decided once and written atomically."""
    path = data / "plan.json"
    if path.exists():
        return [(pair[0], pair[1]) for pair in json.loads(path.read_text())]
    from runtime.engine._execution import new_id

    plan = [(new_id(), flow_id) for flow_id, count in PLAN.items() for _ in range(count)]
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(plan))
    os.replace(partial, path)
    return plan


async def main(data: Path, flows_dir: Path) -> int:
    configure_logging("error")
    await anyio.Path(data).mkdir(parents=True, exist_ok=True)
    plan = load_plan(data)
    repository = FlowRepository()
    problems = repository.load_dir(flows_dir)
    if problems:
        print("\n".join(map(str, problems)), file=sys.stderr)
        return 2
    async with Runtime(data_dir=data, flows=repository) as runtime:
        for execution_id, flow_id in plan:
            if await runtime.store.get_execution(execution_id) is None:
                flow = repository.get("crash", flow_id)
                assert flow is not None
                await runtime.start(flow, execution_id=execution_id)
        for execution_id, _ in plan:
            with contextlib.suppress(LookupError):  # ended in an earlier run
                await runtime.handle(execution_id).result()
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, Path(sys.argv[1]), Path(sys.argv[2])))
