"""Engine workloads: whole executions on the memory store, on SQLite and on PostgreSQL.

Every workload runs a real Runtime on the real clock; figures are throughputs over wall
time (or latencies), measured in this process unless said otherwise.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from benchmarks._report import Figure, percentile
from runtime.engine import Runtime, State
from runtime.parsing import parse_flow
from runtime.store import MemoryStore, SqliteStore, Store

ROOT = Path(__file__).resolve().parent.parent


PG_URL = os.environ.get("TIERCEL_BENCH_PG_URL") or "postgresql://postgres@127.0.0.1:5432/test"
"""The database of ``--store postgres`` (its schema ``tiercel_bench`` is dropped and made
anew for each store)."""


def make_store(kind: str, folder: Path) -> Store:
    """A fresh store of ``kind`` (memory, sqlite or postgres) in ``folder``."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(folder / "bench.db")
    if kind == "postgres":
        import psycopg

        from runtime.store import PostgresStore

        with psycopg.connect(PG_URL, autocommit=True) as connection:
            connection.execute("DROP SCHEMA IF EXISTS tiercel_bench CASCADE")
        return PostgresStore(f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema=tiercel_bench")
    raise ValueError(f"unknown store {kind!r}")


def for_each(count: int, limit: int) -> str:
    """A flow that loops over ``count`` values running one Return task each."""
    return f"""
id: loop-{count}-{limit}
namespace: bench
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{{{ range(1, {count}) }}}}"
    concurrencyLimit: {limit}
    tasks:
      - id: r
        type: io.kestra.plugin.core.debug.Return
        format: "{{{{ taskrun.value }}}}"
"""


def plain_list(count: int) -> str:
    """A flow of ``count`` Return tasks written one after the other."""
    tasks = "\n".join(
        f"  - {{id: t{i}, type: io.kestra.plugin.core.debug.Return, format: '{i}'}}"
        for i in range(count)
    )
    return f"id: list-{count}\nnamespace: bench\ntasks:\n{tasks}\n"


async def _with_runtime(kind: str, body: Callable[[Runtime], Awaitable[Any]]) -> Any:
    with tempfile.TemporaryDirectory(prefix="tiercel-bench-") as folder:
        path = Path(folder)
        async with Runtime(data_dir=path, store=make_store(kind, path)) as runtime:
            result = await body(runtime)
            await runtime.store.flush()
            return result


async def one_execution(kind: str, text: str) -> tuple[int, float]:
    """(task runs, seconds) for one execution of a flow, flush to the store included.

    The flow is parsed before the clock starts: what is measured is running it.
    """
    flow = parse_flow(text)

    async def body(runtime: Runtime) -> tuple[int, float]:
        gc.collect()
        started = time.perf_counter()
        execution = await runtime.run(flow)
        await runtime.store.flush()
        elapsed = time.perf_counter() - started
        if execution.state.current is not State.SUCCESS:
            raise RuntimeError(f"benchmark flow ended {execution.state.current.value}")
        return len(execution.task_run_list), elapsed

    result: tuple[int, float] = await _with_runtime(kind, body)
    return result


def _rate(figure: str, runs: int, seconds: float, kind: str, **params: Any) -> Figure:
    return Figure(name=figure, value=runs / seconds, unit="task runs/s", store=kind, params=params)


async def sequential(kind: str, quick: bool) -> list[Figure]:
    """One execution of 1,000 and 10,000 Return tasks, one at a time."""
    figures: list[Figure] = []
    for count in (100, 1_000) if quick else (1_000, 10_000):
        runs, seconds = await one_execution(kind, for_each(count, 1))
        figures.append(_rate("sequential.foreach", runs, seconds, kind, task_runs=count))
    count = 100 if quick else 1_000
    runs, seconds = await one_execution(kind, plain_list(count))
    figures.append(_rate("sequential.list", runs, seconds, kind, task_runs=count))
    return figures


async def fanout(kind: str, quick: bool) -> list[Figure]:
    """ForEach over 10,000 values, all at once and 100 at a time."""
    count = 1_000 if quick else 10_000
    figures: list[Figure] = []
    for limit in (0, 100):
        runs, seconds = await one_execution(kind, for_each(count, limit))
        figures.append(
            _rate("fanout.foreach", runs, seconds, kind, task_runs=count, concurrency_limit=limit)
        )
    return figures


TEN_TASKS = plain_list(10).replace("list-10", "ten-tasks")
"""A flow of ten Return tasks (parsed once per workload, outside the timing)."""


async def executions(kind: str, quick: bool) -> list[Figure]:
    """1,000 executions of a 10-task flow started together: rate and latency."""
    count = 100 if quick else 1_000

    flow = parse_flow(TEN_TASKS)

    async def body(runtime: Runtime) -> list[Figure]:
        latencies: list[float] = []
        started = time.perf_counter()

        async def one() -> None:
            begin = time.perf_counter()
            handle = await runtime.start(flow)
            await handle.result()
            latencies.append(time.perf_counter() - begin)

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
        await runtime.store.flush()
        elapsed = time.perf_counter() - started
        params = {"executions": count, "tasks_per_execution": 10}
        return [
            Figure(
                name="executions.rate",
                value=count / elapsed,
                unit="executions/s",
                store=kind,
                params=params,
            ),
            *[
                Figure(
                    name=f"executions.latency.p{q}",
                    value=percentile(latencies, q) * 1000,
                    unit="ms",
                    store=kind,
                    params=params,
                )
                for q in (50, 90, 99)
            ],
        ]

    figures: list[Figure] = await _with_runtime(kind, body)
    return figures


FLAKY = """
id: flaky
namespace: bench
tasks:
  - id: t
    type: io.kestra.plugin.core.log.Log
    message: "{{ taskrun.attemptsCount >= 4 ? 'ok' : failing_on_purpose }}"
    retry: {type: constant, interval: PT0S, maxAttempt: 5}
"""


async def retries(kind: str, quick: bool) -> list[Figure]:
    """A task failing 4 times with zero interval, then succeeding: attempts per second."""
    count = 20 if quick else 200
    flow = parse_flow(FLAKY)

    async def body(runtime: Runtime) -> Figure:
        started = time.perf_counter()
        attempts = 0
        for _ in range(count):
            execution = await runtime.run(flow)
            attempts += len(execution.task_run_list[0].attempts or ())
        await runtime.store.flush()
        return Figure(
            name="retries.attempts",
            value=attempts / (time.perf_counter() - started),
            unit="attempts/s",
            store=kind,
            params={"executions": count, "attempts_each": 5},
        )

    return [await _with_runtime(kind, body)]


def hundred_sleeps(count: int) -> str:
    tasks = "\n".join(
        f"      - {{id: s{i}, type: io.kestra.plugin.core.flow.Sleep, duration: PT1H}}"
        for i in range(count)
    )
    head = "id: sleepers\nnamespace: bench\ntasks:\n  - id: all\n"
    return f"{head}    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n{tasks}\n"


PAUSING = """
id: pausing
namespace: bench
tasks:
  - {id: wait, type: io.kestra.plugin.core.flow.Pause}
  - {id: after, type: io.kestra.plugin.core.debug.Return, format: done}
"""


async def control(kind: str, quick: bool) -> list[Figure]:
    """Kill of an execution with 100 running Sleep tasks, until KILLED; pause/resume."""
    rounds = 5 if quick else 30
    sleepers = parse_flow(hundred_sleeps(100))
    pausing = parse_flow(PAUSING)

    async def body(runtime: Runtime) -> list[Figure]:
        kills: list[float] = []
        for _ in range(rounds):
            handle = await runtime.start(sleepers)
            async for _ in handle.changes():
                running = sum(
                    1 for t in handle.execution.task_run_list if t.state.current is State.RUNNING
                )
                if running == 101:
                    break
            started = time.perf_counter()
            await handle.kill()
            await handle.result()
            kills.append(time.perf_counter() - started)
        round_trips: list[float] = []
        for _ in range(rounds):
            handle = await runtime.start(pausing)
            await handle.wait_for_state(State.PAUSED)
            started = time.perf_counter()
            await handle.resume()
            await handle.result()
            round_trips.append(time.perf_counter() - started)
        return [
            Figure(
                name=f"{name}.p{q}",
                value=percentile(samples, q) * 1000,
                unit="ms",
                store=kind,
                params={"rounds": rounds, "running_tasks": running},
            )
            for name, samples, running in (
                ("control.kill", kills, 100),
                ("control.resume", round_trips, 0),
            )
            for q in (50, 99)
        ]

    figures: list[Figure] = await _with_runtime(kind, body)
    return figures


async def growth(kind: str, quick: bool) -> list[Figure]:
    """Task runs per second at 1k, 10k and 100k task runs in one execution."""
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    figures: list[Figure] = []
    for count in sizes:
        runs, seconds = await one_execution(kind, for_each(count, 1))
        figures.append(_rate("growth", runs, seconds, kind, task_runs=count))
    first = figures[0].value
    for figure in figures[1:]:
        figure.ratio = figure.value / first
        figure.ratio_to = "growth@1000"
    return figures


def _child_figures(args: list[str]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks._child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {result.stderr[-2000:]}")
    found: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


async def memory(kind: str, quick: bool) -> list[Figure]:
    """RSS per paused execution, with 10,000 executions paused at once (in a child process)."""
    count = 1_000 if quick else 10_000
    measured = await anyio.to_thread.run_sync(_child_figures, ["paused", kind, str(count)])
    return [Figure(**figure) for figure in measured]


_MEASURE_CHILD = """
import resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, capture_output=True)
wall = time.perf_counter() - started
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def coldstart(quick: bool) -> list[Figure]:
    """``tiercel run`` of a one-task flow: wall time and peak RSS of the whole process.

    Each run is measured by a small wrapper process, so that the peak RSS is that of the
    ``tiercel`` process alone.
    """
    runs = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="tiercel-cold-") as folder:
        flow = Path(folder) / "one.yaml"
        flow.write_text(
            "id: one\nnamespace: bench\n"
            "tasks: [{id: r, type: io.kestra.plugin.core.debug.Return, format: x}]\n"
        )
        walls: list[float] = []
        peaks: list[float] = []
        for index in range(runs):
            tiercel = [sys.executable, "-m", "runtime.cli", "run", str(flow)]
            result = subprocess.run(
                [sys.executable, "-c", _MEASURE_CHILD, *tiercel, "--data", f"{folder}/d{index}"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            wall, peak = result.stdout.split()
            walls.append(float(wall))
            peaks.append(float(peak))
    return [
        Figure(
            name="coldstart.wall",
            value=statistics.median(walls),
            unit="s",
            store="sqlite",
            params={"runs": runs},
        ),
        Figure(
            name="coldstart.peak_rss",
            value=max(peaks),
            unit="MB",
            store="sqlite",
            params={"runs": runs},
        ),
    ]


StoreWorkload = Callable[[str, bool], Awaitable[list[Figure]]]

STORE_WORKLOADS: dict[str, StoreWorkload] = {
    "sequential": sequential,
    "fanout": fanout,
    "executions": executions,
    "retries": retries,
    "control": control,
    "memory": memory,
    "growth": growth,
}


def run_store_workload(name: str, stores: list[str], quick: bool) -> list[Figure]:
    """Run one store workload on each store, in this process."""
    figures: list[Figure] = []
    for kind in stores:
        figures += anyio.run(STORE_WORKLOADS[name], kind, quick)
    return figures
