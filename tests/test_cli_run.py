"""``tiercel run``: exit statuses, JSON output, inputs, subflows, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tiercel(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_flow_succeeds_with_json_output() -> None:
    result = tiercel("run", "examples/hello.yaml", "-i", "who=test", "--json")
    assert result.returncode == 0, result.stderr
    execution = json.loads(result.stdout)
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["outputs"] == {"message": "HELLO TEST (b), 3 lines"}
    assert {"id", "namespace", "flowId", "flowRevision", "inputs", "labels", "taskRunList"} <= set(
        execution
    )
    task_run = execution["taskRunList"][0]
    assert {"id", "executionId", "taskId", "parentTaskRunId", "value", "state", "outputs"} <= set(
        task_run
    )
    assert {"current", "histories", "startDate", "endDate", "duration"} <= set(task_run["state"])


def test_a_failed_execution_exits_1(tmp_path: Path) -> None:
    flow = tmp_path / "fail.yaml"
    flow.write_text("id: fail\nnamespace: t\ntasks: [{id: f, type: Fail, errorMessage: nope}]\n")
    result = tiercel("run", str(flow))
    assert result.returncode == 1
    assert "nope" in result.stderr


def test_an_invalid_flow_or_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    flow = tmp_path / "bad.yaml"
    flow.write_text("id: bad\nnamespace: t\ntasks: [{id: f, type: Nope}]\n")
    result = tiercel("run", str(flow))
    assert result.returncode == 2
    assert f"{flow}:3:23: tasks[0].type: unknown task type 'Nope'" in result.stderr
    assert "Traceback" not in result.stderr

    typed = tmp_path / "typed.yaml"
    typed.write_text(
        "id: typed\nnamespace: t\ninputs: [{id: n, type: INT}]\ntasks: [{id: r, type: Return}]\n"
    )
    for args, expected in [
        ((), "input 'n' is required"),
        (("-i", "n=abc"), "input 'n' (INT): expected an integer, found 'abc'"),
        (("-i", "m=1", "-i", "n=1"), "input 'm' is not an input of this flow"),
        (("-i", "oops"), "is not key=value"),
    ]:
        result = tiercel("run", str(typed), *args)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr
        assert "Traceback" not in result.stderr


def test_subflows_are_found_next_to_the_flow_file(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "id: child\nnamespace: t\ntasks: [{id: c, type: Return, format: from child}]\n"
    )
    parent = tmp_path / "parent.yaml"
    parent.write_text(
        "id: parent\nnamespace: t\ntasks:\n  - {id: call, type: Subflow, namespace: t, flowId: child}\n"
    )
    result = tiercel("run", str(parent), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["taskRunList"][0]["outputs"]["state"] == "SUCCESS"


def test_ctrl_c_kills_the_execution_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    flow = tmp_path / "long.yaml"
    flow.write_text("id: long\nnamespace: t\ntasks: [{id: s, type: Sleep, duration: PT1H}]\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "run", str(flow), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert process.stderr is not None
    first = process.stderr.readline()  # printed once Ctrl-C is handled
    assert "started" in first
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert process.returncode == 1, err
    execution = json.loads(out)
    assert execution["state"]["current"] == "KILLED"
    assert execution["taskRunList"][0]["state"]["current"] == "KILLED"
    assert "Traceback" not in err
