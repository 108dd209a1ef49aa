"""Tiercel beside its peers, in the same run: Prefect 3 and Dagster, each in its own
virtual environment (pinned versions, installed from PyPI into a cache folder on first use).

Equivalent workloads: a one-task flow from a cold start; 1,000 sequential no-op tasks;
1,000 tasks submitted concurrently; a task that fails twice, then succeeds. Each Tiercel
figure is printed with its ratio to the peer's (Tiercel / peer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks._report import Figure
from benchmarks.engine_bench import _MEASURE_CHILD, make_store, plain_list
from runtime.engine import Runtime, State
from runtime.parsing import parse_flow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PEERS: dict[str, tuple[str, str]] = {
    "prefect": ("prefect==3.9.1", "prefect_bench.py"),
    "dagster": ("dagster==1.13.29", "dagster_bench.py"),
}

INSTALL_TIMEOUT = 1800


def cache_dir() -> Path:
    """Where peer environments live (``TIERCEL_BENCH_CACHE``, else ~/.cache/tiercel/bench)."""
    configured = os.environ.get("TIERCEL_BENCH_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "tiercel" / "bench"


def peer_python(name: str) -> Path:
    """The interpreter of a peer's environment, created and installed when missing."""
    requirement, _ = PEERS[name]
    folder = cache_dir() / requirement.replace("==", "-")
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    if marker.exists() and python.exists():
        return python
    folder.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    marker.write_text(requirement)
    return python


def _peer_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(home / "prefect")
    env["DAGSTER_HOME"] = str(home / "dagster")
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    return env


def run_peer(name: str, workload: str, *args: str) -> list[dict[str, Any]]:
    """Run one workload with a peer's interpreter; its figures."""
    python = peer_python(name)
    script = HERE / "peers" / PEERS[name][1]
    with tempfile.TemporaryDirectory(prefix=f"tiercel-peer-{name}-") as home:
        result = subprocess.run(
            [str(python), str(script), workload, *args],
            cwd=home,
            env=_peer_env(Path(home)),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{name} {workload} failed:\n{result.stderr[-3000:]}")
    figures: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def peer_coldstart(name: str, store: str | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of a peer running a one-task flow from a cold start."""
    python = peer_python(name)
    script = HERE / "peers" / PEERS[name][1]
    with tempfile.TemporaryDirectory(prefix=f"tiercel-peer-{name}-") as home:
        command = [str(python), str(script), "one", *([store] if store else [])]
        result = subprocess.run(
            [sys.executable, "-c", _MEASURE_CHILD, *command],
            cwd=home,
            env=_peer_env(Path(home)),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    wall, peak = result.stdout.split()
    return float(wall), float(peak)


# -- Tiercel's side -----------------------------------------------------------------------

CONCURRENT = """
id: concurrent
namespace: bench
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 1000) }}"
    concurrencyLimit: 0
    tasks:
      - {id: noop, type: io.kestra.plugin.core.debug.Return, format: "{{ taskrun.value }}"}
"""

TWICE_FAILING = """
id: twice
namespace: bench
tasks:
  - id: flaky
    type: io.kestra.plugin.core.log.Log
    message: "{{ taskrun.attemptsCount >= 2 ? 'ok' : not_yet }}"
    retry: {type: constant, interval: PT0S, maxAttempt: 3}
"""


async def tiercel_figures(store: str) -> dict[str, float]:
    """Tiercel's figures for the peer workloads on ``store``."""
    sequential = parse_flow(plain_list(1000))
    concurrent = parse_flow(CONCURRENT)
    twice = parse_flow(TWICE_FAILING)
    with tempfile.TemporaryDirectory(prefix="tiercel-peers-") as folder:
        path = Path(folder)
        async with Runtime(data_dir=path, store=make_store(store, path)) as runtime:
            started = time.perf_counter()
            done = await runtime.run(sequential)
            await runtime.store.flush()
            sequential_rate = 1000 / (time.perf_counter() - started)
            started = time.perf_counter()
            fanned = await runtime.run(concurrent)
            await runtime.store.flush()
            concurrent_rate = 1000 / (time.perf_counter() - started)
            runs = 20
            started = time.perf_counter()
            for _ in range(runs):
                retried = await runtime.run(twice)
            retries_ms = (time.perf_counter() - started) / runs * 1000
    for execution in (done, fanned, retried):
        if execution.state.current is not State.SUCCESS:
            raise RuntimeError(f"peer-equivalent flow ended {execution.state.current.value}")
    return {"sequential": sequential_rate, "concurrent": concurrent_rate, "retries": retries_ms}


def tiercel_coldstart() -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="tiercel-cold-") as folder:
        flow = Path(folder) / "one.yaml"
        flow.write_text(
            "id: one\nnamespace: bench\n"
            "tasks: [{id: r, type: io.kestra.plugin.core.debug.Return, format: x}]\n"
        )
        command = [sys.executable, "-m", "runtime.cli", "run", str(flow), "--data", folder]
        result = subprocess.run(
            [sys.executable, "-c", _MEASURE_CHILD, *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    wall, peak = result.stdout.split()
    return float(wall), float(peak)


def _pair(
    name: str, unit: str, ours: float, theirs: float, peer: str, store: str, **params: Any
) -> list[Figure]:
    return [
        Figure(
            name=f"peers.{name}", value=theirs, unit=unit, store=f"{peer}/{store}", params=params
        ),
        Figure(
            name=f"peers.{name}",
            value=ours,
            unit=unit,
            store=f"tiercel/{store}",
            ratio=ours / theirs if theirs else None,
            ratio_to=peer,
            params=params,
        ),
    ]


def run(quick: bool = False) -> list[Figure]:
    """Every peer workload, Tiercel's figure beside each peer's."""
    figures: list[Figure] = []
    ours = {store: anyio.run(tiercel_figures, store) for store in ("memory", "sqlite")}
    our_wall, our_rss = tiercel_coldstart()
    # Prefect's default local mode keeps its state in SQLite: compare with Tiercel on SQLite.
    wall, rss = peer_coldstart("prefect")
    figures += _pair("coldstart.wall", "s", our_wall, wall, "prefect", "sqlite")
    figures += _pair("coldstart.peak_rss", "MB", our_rss, rss, "prefect", "sqlite")
    prefect: dict[str, float] = {}
    for workload in ("sequential", "concurrent", "retries"):
        for item in run_peer("prefect", workload):
            prefect[item["name"]] = item["value"]
    figures += _pair(
        "sequential", "tasks/s", ours["sqlite"]["sequential"], prefect["sequential.end_to_end"],
        "prefect", "sqlite", tasks=1000,
    )  # fmt: skip
    figures += _pair(
        "concurrent", "tasks/s", ours["sqlite"]["concurrent"], prefect["concurrent"],
        "prefect", "sqlite", tasks=1000,
    )  # fmt: skip
    figures += _pair(
        "retries", "ms/execution", ours["sqlite"]["retries"], prefect["retries"],
        "prefect", "sqlite", failures=2,
    )  # fmt: skip
    for store in ("memory", "sqlite"):
        wall, rss = peer_coldstart("dagster", store)
        if store == "sqlite":
            figures += _pair("coldstart.wall", "s", our_wall, wall, "dagster", store)
            figures += _pair("coldstart.peak_rss", "MB", our_rss, rss, "dagster", store)
        dagster: dict[str, float] = {}
        for workload in ("sequential", "concurrent", "retries"):
            for item in run_peer("dagster", workload, store):
                dagster[item["name"]] = item["value"]
        mine = ours[store]
        figures += _pair(
            "sequential", "tasks/s", mine["sequential"], dagster["sequential"], "dagster",
            store, tasks=1000,
        )  # fmt: skip
        figures += _pair(
            "concurrent", "tasks/s", mine["concurrent"], dagster["concurrent"], "dagster",
            store, tasks=1000,
        )  # fmt: skip
        figures += _pair(
            "retries", "ms/execution", mine["retries"], dagster["retries"], "dagster", store,
            failures=2,
        )  # fmt: skip
    return figures
