"""``tiercel bench``: the load tool for users' flows."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bench_reports_throughput_latency_and_time_per_task(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: b\nnamespace: t\ninputs: [{id: n, type: INT}]\ntasks:\n"
        "  - {id: nap, type: Sleep, duration: PT0.05S}\n"
        "  - {id: fail-sometimes, type: Fail, condition: '{{ inputs.n > 5 }}'}\n"
    )
    result = bench(str(flow), "-n", "20", "-c", "5", "-i", "n=3", "--json", "--store", "memory")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["finished"] == report["requested"] == 20
    assert report["states"] == {"SUCCESS": 20}
    assert report["task_runs"] == 40
    assert report["executions_per_second"] > 0
    assert report["latency_p50_ms"] >= 50
    assert report["latency_p50_ms"] <= report["latency_p90_ms"] <= report["latency_max_ms"]
    assert {t["task_id"] for t in report["task_times"]} == {"nap", "fail-sometimes"}
    nap = next(t for t in report["task_times"] if t["task_id"] == "nap")
    assert nap["runs"] == 20
    assert nap["mean_seconds"] >= 0.05
    assert report["peak_rss_mb"] > 0

    failing = bench(str(flow), "-n", "4", "-c", "2", "-i", "n=9")
    assert failing.returncode == 0, failing.stderr
    assert "failures by state: FAILED 4" in failing.stdout


def test_bench_refuses_invalid_flows_and_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: b\nnamespace: t\ntasks: [{id: x, type: Nope}]\n")
    assert bench(str(bad)).returncode == 2
    typed = tmp_path / "typed.yaml"
    typed.write_text(
        "id: t\nnamespace: t\ninputs: [{id: n, type: INT}]\ntasks: [{id: r, type: Return}]\n"
    )
    result = bench(str(typed), "-n", "2", "-i", "n=abc")
    assert result.returncode == 2
    assert "input 'n' (INT)" in result.stderr


def test_ctrl_c_stops_cleanly_and_reports_what_finished(tmp_path: Path) -> None:
    flow = tmp_path / "slow.yaml"
    flow.write_text("id: s\nnamespace: t\ntasks: [{id: nap, type: Sleep, duration: PT0.2S}]\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "bench",
            str(flow),
            "-n",
            "1000",
            "-c",
            "2",
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    assert "bench:" in process.stderr.readline()  # printed once Ctrl-C is handled
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    report = json.loads(out)
    assert report["interrupted"] is True
    assert 0 < report["finished"] < 1000
    assert set(report["states"]) <= {"SUCCESS"}


def test_bench_against_a_server(tmp_path: Path) -> None:
    from tests.server_process import running_server

    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: remote\nnamespace: t\ninputs: [{id: n, type: INT}]\ntasks:\n"
        "  - {id: nap, type: Sleep, duration: PT0.02S}\n"
        "  - {id: say, type: Return, format: '{{ inputs.n }}'}\n"
    )
    with running_server(tmp_path / "data") as server:
        result = bench(
            str(flow), "-n", "12", "-c", "4", "-i", "n=5", "--json",
            "--server", server.url, "--token", server.token,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["store"] == f"server {server.url}"
        assert report["finished"] == 12
        assert report["states"] == {"SUCCESS": 12}
        assert report["task_runs"] == 24
        with server.client() as api:
            found = api.get("/api/v1/executions/search", params={"flowId": "remote"}).json()
            assert found["total"] == 12
            assert api.get("/api/v1/flows/t/remote").json()["source"] == flow.read_text()
        denied = bench(
            str(flow), "-n", "1", "-i", "n=1", "--server", server.url, "--token", "x" * 20
        )
        assert denied.returncode == 1
        assert "401" in denied.stderr
