"""Measurements that need a process of their own (resident memory).

``python -m benchmarks._child paused STORE COUNT`` prints one JSON line: a list of figures.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import msgspec

from benchmarks._report import Figure
from benchmarks.engine_bench import PAUSING, make_store
from runtime.engine import Runtime, State
from runtime.logging import configure_logging
from runtime.parsing import parse_flow


def resident_bytes() -> int:
    """This process's resident memory now (not the peak)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


async def paused(kind: str, count: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="tiercel-mem-") as folder:
        path = Path(folder)
        async with Runtime(data_dir=path, store=make_store(kind, path)) as runtime:
            flow = parse_flow(PAUSING)
            for _ in range(20):  # warm every cache and code path first
                handle = await runtime.start(flow)
                await handle.wait_for_state(State.PAUSED)
            await runtime.store.flush()
            gc.collect()
            before = resident_bytes()
            handles = [await runtime.start(flow) for _ in range(count)]
            for handle in handles:
                await handle.wait_for_state(State.PAUSED)
            await runtime.store.flush()
            gc.collect()
            after = resident_bytes()
            per = (after - before) / count / 1024
            for handle in handles:
                await handle.kill()
    return [
        Figure(
            name="memory.per_paused_execution",
            value=per,
            unit="KB",
            store=kind,
            params={"paused_executions": count},
        )
    ]


def main(argv: list[str]) -> None:
    configure_logging("error")
    if argv[0] == "paused":
        figures = anyio.run(paused, argv[1], int(argv[2]))
    else:
        raise SystemExit(f"unknown measurement {argv[0]!r}")
    records: list[dict[str, Any]] = [msgspec.to_builtins(f) for f in figures]
    sys.stdout.write(msgspec.json.encode(records).decode() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
