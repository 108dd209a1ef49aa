"""``tiercel bench``: run a flow many times and report how it behaves under load."""

from __future__ import annotations

import resource
import signal
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import msgspec

from runtime.engine import Execution, Runtime
from runtime.model import Flow
from runtime.store import MemoryStore, SqliteStore, Store


class TaskTime(msgspec.Struct, kw_only=True):
    """Time spent in the task runs of one task id."""

    task_id: str
    runs: int
    total_seconds: float
    mean_seconds: float


class BenchReport(msgspec.Struct, kw_only=True):
    """What a bench run measured. Latencies are from an execution's creation to its end."""

    flow: str
    store: str
    requested: int
    finished: int
    concurrency: int
    interrupted: bool
    wall_seconds: float
    executions_per_second: float
    task_runs: int
    task_runs_per_second: float
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    states: dict[str, int]
    task_times: list[TaskTime]
    peak_rss_mb: float


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize(
    flow: Flow,
    store: str,
    requested: int,
    concurrency: int,
    executions: list[Execution],
    wall: float,
    interrupted: bool,
) -> BenchReport:
    """The report for the executions that finished."""
    latencies = sorted(
        (e.state.end_date - e.state.start_date).total_seconds() * 1000
        for e in executions
        if e.state.end_date is not None
    )
    per_task: dict[str, list[float]] = defaultdict(list)
    task_runs = 0
    for execution in executions:
        for task_run in execution.task_run_list:
            task_runs += 1
            if task_run.state.end_date is not None:
                seconds = (task_run.state.end_date - task_run.state.start_date).total_seconds()
                per_task[task_run.task_id].append(seconds)
    wall = max(wall, 1e-9)
    return BenchReport(
        flow=flow.uid,
        store=store,
        requested=requested,
        finished=len(executions),
        concurrency=concurrency,
        interrupted=interrupted,
        wall_seconds=wall,
        executions_per_second=len(executions) / wall,
        task_runs=task_runs,
        task_runs_per_second=task_runs / wall,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p90_ms=_percentile(latencies, 90),
        latency_p99_ms=_percentile(latencies, 99),
        latency_max_ms=latencies[-1] if latencies else None,
        states=dict(Counter(e.state.current.value for e in executions)),
        task_times=sorted(
            (
                TaskTime(
                    task_id=task_id,
                    runs=len(times),
                    total_seconds=sum(times),
                    mean_seconds=sum(times) / len(times),
                )
                for task_id, times in per_task.items()
            ),
            key=lambda t: -t.total_seconds,
        ),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


async def bench(
    flow: Flow,
    inputs: Mapping[str, Any],
    executions: int,
    concurrency: int,
    store: str = "sqlite",
    flows: Any = None,
    on_progress: Callable[[int], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> BenchReport:
    """Run ``executions`` executions of ``flow``, ``concurrency`` at a time.

    SIGINT or SIGTERM stops it cleanly: nothing new starts, running executions are killed,
    and the report covers what finished.
    """
    finished: list[Execution] = []
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="tiercel-bench-") as folder:
        path = Path(folder)
        chosen: Store = MemoryStore() if store == "memory" else SqliteStore(path / "bench.db")
        async with Runtime(data_dir=path, store=chosen, flows=flows) as runtime:
            next_index = 0
            started = time.perf_counter()

            async def worker() -> None:
                nonlocal next_index
                while next_index < executions:
                    next_index += 1
                    handle = await runtime.start(flow, inputs)
                    try:
                        execution = await handle.result()
                    except anyio.get_cancelled_exc_class():
                        with anyio.CancelScope(shield=True):
                            await handle.kill()
                        raise
                    finished.append(execution)
                    if on_progress is not None:
                        on_progress(len(finished))

            async with anyio.create_task_group() as tg:

                async def stop_on_signal() -> None:
                    nonlocal interrupted
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        if on_ready is not None:
                            on_ready()
                        async for _ in signals:
                            interrupted = True
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(stop_on_signal)
                async with anyio.create_task_group() as workers:
                    for _ in range(max(1, min(concurrency, executions))):
                        workers.start_soon(worker)
                tg.cancel_scope.cancel()
            await runtime.store.flush()
            wall = time.perf_counter() - started
    return summarize(flow, store, executions, concurrency, finished, wall, interrupted)


def report_lines(report: BenchReport) -> list[str]:
    """The report as lines of text for a terminal."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f} ms"

    lines = [
        f"flow {report.flow} on {report.store}: {report.finished}/{report.requested} executions"
        f" finished, {report.concurrency} at a time"
        + (" (interrupted)" if report.interrupted else ""),
        f"  wall time          {report.wall_seconds:,.2f} s",
        f"  executions/s       {report.executions_per_second:,.1f}",
        f"  task runs/s        {report.task_runs_per_second:,.1f} ({report.task_runs} task runs)",
        f"  latency p50/p90    {ms(report.latency_p50_ms)} / {ms(report.latency_p90_ms)}",
        f"  latency p99/max    {ms(report.latency_p99_ms)} / {ms(report.latency_max_ms)}",
        "  final states       "
        + ", ".join(f"{state} {count}" for state, count in sorted(report.states.items())),
        f"  peak RSS           {report.peak_rss_mb:,.1f} MB",
        "  time per task id:",
    ]
    lines += [
        f"    {t.task_id:<24} {t.runs:>7} runs  {t.total_seconds:>9.3f} s total"
        f"  {t.mean_seconds * 1000:>9.2f} ms mean"
        for t in report.task_times
    ]
    failures = {s: n for s, n in report.states.items() if s not in ("SUCCESS", "WARNING")}
    if failures:
        lines.append(
            "  failures by state: " + ", ".join(f"{s} {n}" for s, n in sorted(failures.items()))
        )
    return lines
