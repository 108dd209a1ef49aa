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


async def bench_remote(
    url: str,
    token: str | None,
    flow: Flow,
    inputs: Mapping[str, Any],
    executions: int,
    concurrency: int,
    on_progress: Callable[[int], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> BenchReport:
    """The same run against a ``tiercel server`` at ``url``.

    The flow file is created on the server (or updated: a changed file is a new revision).
    Each execution is started over HTTP and followed as server-sent events to its end;
    latencies are the server's, from creation to end. SIGINT or SIGTERM kills what runs
    and reports what finished. Peak RSS is this client's, not the server's.
    """
    import httpx

    from runtime.flows import flow_source

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    finished: list[Execution] = []
    interrupted = False
    decoder = msgspec.json.Decoder(Execution)
    limits = httpx.Limits(max_connections=concurrency * 2 + 4)
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=None, limits=limits
    ) as client:
        await _upload_flow(client, flow, flow_source(flow))
        next_index = 0
        started = time.perf_counter()

        async def run_one() -> Execution:
            response = await client.post(
                f"/api/v1/executions/{flow.namespace}/{flow.id}", json=dict(inputs)
            )
            _raise_for(response)
            execution_id = msgspec.json.decode(response.content)["id"]
            try:
                path = f"/api/v1/executions/{execution_id}/follow"
                async with client.stream("GET", path, params={"view": "execution"}) as stream:
                    name, data = "", ""
                    async for line in stream.aiter_lines():
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: "):
                            data += line[6:]
                        elif not line and data:
                            if name == "end":
                                return decoder.decode(data)
                            name, data = "", ""
                response = await client.get(f"/api/v1/executions/{execution_id}")
                _raise_for(response)
                return decoder.decode(response.content)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await client.delete(f"/api/v1/executions/{execution_id}/kill")
                raise

        async def worker() -> None:
            nonlocal next_index
            while next_index < executions:
                next_index += 1
                finished.append(await run_one())
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
        wall = time.perf_counter() - started
    return summarize(flow, f"server {url}", executions, concurrency, finished, wall, interrupted)


class RemoteBenchError(Exception):
    """The server refused a request of the bench."""


def _raise_for(response: Any) -> None:
    if response.status_code >= 400:
        try:
            message = msgspec.json.decode(response.content).get("message", response.text)
        except (msgspec.DecodeError, AttributeError):
            message = response.text
        raise RemoteBenchError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {message}"
        )


async def _upload_flow(client: Any, flow: Flow, source: str) -> None:
    existing = await client.get(f"/api/v1/flows/{flow.namespace}/{flow.id}")
    if existing.status_code == 404:
        _raise_for(await client.post("/api/v1/flows", content=source))
    else:
        _raise_for(existing)
        _raise_for(await client.put(f"/api/v1/flows/{flow.namespace}/{flow.id}", content=source))


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
