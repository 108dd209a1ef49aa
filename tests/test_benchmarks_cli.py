"""The benchmark harness's command line: its output format, not its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_benchmarks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_actors_workload_prints_one_json_object_per_figure() -> None:
    result = run_benchmarks("actors", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    names = {record["name"] for record in records}
    assert {
        "actors.tell",
        "actors.ask",
        "actors.lifecycle",
        "actors.lifecycle.floor",
        "actors.kill_latency.p50",
        "actors.kill_latency.p99",
    } <= names
    for record in records:
        assert isinstance(record["value"], float)
        assert record["value"] > 0
        assert record["unit"]
        assert record["machine"]["python"]
    [lifecycle] = [r for r in records if r["name"] == "actors.lifecycle"]
    assert lifecycle["ratio_to"] == "floor"
    assert lifecycle["ratio"] > 0


def test_an_unknown_workload_is_a_clear_error() -> None:
    result = run_benchmarks("nope")
    assert result.returncode == 2
    assert "unknown workload 'nope'" in result.stderr
    assert "actors" in result.stderr
