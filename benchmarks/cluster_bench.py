"""The scale-out workload: an executor and 1, 2 or 4 workers as separate processes on one
PostgreSQL, fed by an API node in this process; beside the single-process SQLite figures
of the same flows, measured in the same run.

Throughputs are task runs over the executions' own durations (creation to end, as the
store records them), so polling in this process does not blur them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from benchmarks._report import Figure, percentile
from benchmarks.engine_bench import PG_URL, for_each, make_store, one_execution, plain_list
from runtime.engine import Execution, Runtime, State
from runtime.parsing import parse_flow

SCHEMA = "tiercel_bench_cluster"


@contextmanager
def _process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "--log-level", "warning", "server", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("Tiercel running"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60) or process.poll() is not None:
        raise RuntimeError(f"a cluster node did not start: {args}")
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _url() -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={SCHEMA}"


def _reset() -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _steady(execution: Execution) -> float:
    """Attempts ended per second from the first attempt's end to the last one's: the
    pace once work flows, without the start (claim, creating the task runs, the first
    enqueue) and the end."""
    ends = sorted(
        attempt.state.end_date
        for task_run in execution.task_run_list
        for attempt in task_run.attempts or []
        if attempt.state.end_date is not None
    )
    if len(ends) < 2 or ends[-1] == ends[0]:
        return 0.0
    return (len(ends) - 1) / (ends[-1] - ends[0]).total_seconds()


def _duration(execution: Execution) -> float:
    end = execution.state.end_date
    assert end is not None
    return (end - execution.state.start_date).total_seconds()


async def _parallel_runs(runtime: Runtime, text: str, count: int) -> tuple[int, float]:
    """(task runs, seconds) of ``count`` executions of one flow started together, from
    the first start to the last end."""
    flow = parse_flow(text)
    handles = [await runtime.start(flow) for _ in range(count)]
    with anyio.fail_after(600):
        ended = [await handle.result() for handle in handles]
    failed = [e.state.current.value for e in ended if e.state.current is not State.SUCCESS]
    if failed:
        raise RuntimeError(f"executions ended {failed}")
    first = min(e.state.start_date for e in ended)
    last = max(e.state.end_date for e in ended if e.state.end_date is not None)
    return sum(len(e.task_run_list) for e in ended), (last - first).total_seconds()


async def _sqlite_parallel(text: str, count: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="tiercel-bench-") as folder:
        path = Path(folder)
        async with Runtime(data_dir=path, store=make_store("sqlite", path)) as runtime:
            return await _parallel_runs(runtime, text, count)


async def _api_runs(
    data: Path,
    flows: dict[str, str],
    parallel: tuple[str, int],
    kill_rounds: int,
    executions: int,
) -> dict[str, Any]:
    from runtime.cluster import ClusterPlacement, Commands, Leases, node_id, open_pool
    from runtime.store import PostgresStore

    pool = await open_pool(_url())
    node = node_id("bench-api")
    placement = ClusterPlacement(Leases(pool, node), Commands(pool, node))
    results: dict[str, Any] = {}
    try:
        async with Runtime(
            data_dir=data, store=PostgresStore(_url()), placement=placement, recover=False
        ) as runtime:
            for name, text in flows.items():
                handle = await runtime.start(parse_flow(text))
                with anyio.fail_after(600):
                    execution = await handle.result()
                if execution.state.current is not State.SUCCESS:
                    raise RuntimeError(f"{name} ended {execution.state.current.value}")
                results[name] = (len(execution.task_run_list), _duration(execution))
                results[f"{name}.steady"] = _steady(execution)
            results["parallel"] = await _parallel_runs(runtime, *parallel)
            ten = parse_flow(FIVE_TASKS)
            handles = [await runtime.start(ten) for _ in range(executions)]
            ended = [await h.result() for h in handles]
            first = min(e.state.start_date for e in ended)
            last = max(e.state.end_date for e in ended if e.state.end_date is not None)
            results["executions"] = executions / (last - first).total_seconds()
            results["executions_latency"] = [_duration(e) * 1000 for e in ended]
            results["kill"] = await _kill_rounds(runtime, data, kill_rounds)
    finally:
        await pool.close()
    return results


async def _kill_rounds(
    runtime: Runtime, folder: Path, rounds: int
) -> tuple[list[float], list[float]]:
    """Milliseconds from a kill command sent by the API node to the end of the task's
    process, which runs on a worker (another OS process), and to the command's answer
    (the executor owning the execution replies once the kill is applied)."""
    flow = parse_flow(
        "id: sleeper\nnamespace: bench\ntasks:\n"
        "  - {id: nap, type: io.kestra.plugin.scripts.shell.Commands, commands: "
        f"['echo $$ > {folder}/{{{{ execution.id }}}}.pid', 'exec sleep 60']}}\n"
    )
    stopped: list[float] = []
    answered: list[float] = []
    for _ in range(rounds):
        handle = await runtime.start(flow)
        pid_file = folder / f"{handle.id}.pid"
        with anyio.fail_after(60):
            while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110
                await anyio.sleep(0.01)
        pid = int(pid_file.read_text())
        await anyio.sleep(0.05)  # the process is surely under way, not starting
        started = time.perf_counter()

        async def kill(execution_id: str = handle.id, since: float = started) -> None:
            await runtime.kill(execution_id)
            answered.append((time.perf_counter() - since) * 1000)

        async with anyio.create_task_group() as group:
            group.start_soon(kill)
            with anyio.fail_after(60):
                while _alive(pid):  # noqa: ASYNC110 - another process's state
                    await anyio.sleep(0.001)
            stopped.append((time.perf_counter() - started) * 1000)
        await handle.result()
    return stopped, answered


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone (even while being read)
        return False


FIVE_TASKS = plain_list(5).replace("list-5", "five-tasks")


def run(quick: bool) -> list[Figure]:
    """1, 2 and 4 workers (2 in a quick run) beside single-process SQLite."""
    sequential_count = 100 if quick else 500
    fanout_count = 400 if quick else 4_000
    flows = {
        "sequential": for_each(sequential_count, 1),
        "fanout": for_each(fanout_count, 0),
    }
    # sequential flows, many at once: 20 executions of 50 tasks one after the other
    parallel = (for_each(10 if quick else 50, 1).replace("loop-", "seq-"), 20)
    executions = 30 if quick else 200
    figures: list[Figure] = []
    reference: dict[str, float] = {}

    def rate(name: str, value: float, unit: str, store: str, **params: Any) -> Figure:
        base = reference.get(name) if store == "postgres" else None
        return Figure(
            name=f"cluster.{name}",
            value=value,
            unit=unit,
            store=store,
            ratio=value / base if base else None,
            ratio_to="sqlite, 1 process" if base else None,
            params=params,
        )

    for name, text in flows.items():
        runs, seconds = anyio.run(one_execution, "sqlite", text)
        reference[name] = runs / seconds
        figures.append(rate(name, runs / seconds, "task runs/s", "sqlite", task_runs=runs))
    runs, seconds = anyio.run(_sqlite_parallel, *parallel)
    reference["sequential_x20"] = runs / seconds
    figures.append(rate("sequential_x20", runs / seconds, "task runs/s", "sqlite", task_runs=runs))
    _, seconds = anyio.run(_sqlite_parallel, FIVE_TASKS, executions)
    reference["executions"] = executions / seconds
    figures.append(
        rate("executions", executions / seconds, "executions/s", "sqlite", tasks_per_execution=5)
    )
    for workers in (2,) if quick else (1, 2, 4):
        _reset()
        with tempfile.TemporaryDirectory(prefix="tiercel-cluster-") as folder:
            data = Path(folder)
            env = dict(os.environ, TIERCEL_LEASE_SECONDS="5", TIERCEL_API_TOKEN="b" * 32)
            common = ["--store", _url(), "--data", str(data)]
            with (
                _process([*common, "--role", "executor"], env),
                contextlib_all(
                    [*common, "--role", "worker", "--worker-concurrency", "16"], env, workers
                ),
            ):
                results = anyio.run(
                    _api_runs, data, flows, parallel, 3 if quick else 10, executions
                )
        for name in flows:
            runs, seconds = results[name]
            figures.append(
                rate(
                    name, runs / seconds, "task runs/s", "postgres", workers=workers, task_runs=runs
                )
            )
            if name == "fanout":
                figures.append(
                    rate(
                        "fanout.steady",
                        results["fanout.steady"],
                        "task runs/s",
                        "postgres",
                        workers=workers,
                    )
                )
            if name == "sequential":  # one task run at a time: the time of one hop
                figures.append(
                    rate(
                        "sequential.per_task_run",
                        seconds / runs * 1000,
                        "ms",
                        "postgres",
                        workers=workers,
                    )
                )
        runs, seconds = results["parallel"]
        figures.append(
            rate(
                "sequential_x20",
                runs / seconds,
                "task runs/s",
                "postgres",
                workers=workers,
                task_runs=runs,
            )
        )
        figures.append(
            rate(
                "executions",
                results["executions"],
                "executions/s",
                "postgres",
                workers=workers,
                tasks_per_execution=5,
            )
        )
        stopped, answered = results["kill"]
        figures.extend(
            rate(
                f"{name}.p{q}",
                percentile(values, q),
                "ms",
                "postgres",
                workers=workers,
                rounds=len(values),
            )
            for name, values in (("kill", stopped), ("kill.answered", answered))
            for q in (50, 99)
        )
    return figures


@contextmanager
def contextlib_all(args: list[str], env: dict[str, str], count: int) -> Iterator[None]:
    """``count`` processes of the same node, stopped together."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(_process(args, env))
        yield
