"""Stopping and starting the daemon: nothing is lost, everything finishes."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.server_process import running_server

FLOWS = {
    "sleepy.yaml": """
id: sleepy
namespace: company.team
tasks:
  - {id: before, type: Return, format: "{{ inputs.n }}"}
  - {id: nap, type: Sleep, duration: PT1S, retry: {type: constant, interval: PT0.1S, maxAttempt: 3}}
  - {id: after, type: Return, format: "{{ outputs.before.value }} done"}
inputs:
  - {id: n, type: INT}
""",
    "gate.yaml": """
id: gate
namespace: company.team
tasks:
  - {id: wait, type: Pause}
  - {id: after, type: Return, format: resumed}
""",
    "long.yaml": """
id: long
namespace: company.team
tasks:
  - {id: forever, type: Sleep, duration: PT1H, retry: {type: constant, interval: PT0.1S, maxAttempt: 2}}
""",
}


def state_of(client: httpx.Client, execution_id: str) -> str:
    current: str = client.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"]
    return current


def wait_all(
    client: httpx.Client, ids: list[str], states: set[str], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = {i: client.get(f"/api/v1/executions/{i}").json() for i in ids}
        if all(e["state"]["current"] in states for e in found.values()):
            return found
        assert time.monotonic() < deadline, {i: e["state"]["current"] for i, e in found.items()}
        time.sleep(0.1)


def test_a_stopped_server_finishes_its_executions_after_a_restart(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / name).write_text(text)
    data = tmp_path / "data"
    args = ("--flows", str(flows), "--shutdown-timeout", "0.3")
    with running_server(data, *args) as server, server.client() as api:
        sleepy = [
            api.post("/api/v1/executions/company.team/sleepy", json={"n": n}).json()["id"]
            for n in range(5)
        ]
        gated = [
            api.post("/api/v1/executions/company.team/gate", json={}).json()["id"] for _ in range(3)
        ]
        wait_all(api, gated, {"PAUSED"})
        running = [i for i in sleepy if state_of(api, i) == "RUNNING"]
        assert running, "some executions must still be running when the server stops"
        assert server.stop(signal.SIGTERM) == 0
    assert "stopping" in server.log
    with running_server(data, *args) as again, again.client() as api:
        assert api.get("/health").json()["status"] == "UP"
        done = wait_all(api, sleepy, {"SUCCESS"})
        for n, execution_id in enumerate(sleepy):
            outputs = [t.get("outputs") for t in done[execution_id]["taskRunList"]]
            assert outputs[-1] == {"value": f"{n} done"}
        for execution_id in gated:
            assert state_of(api, execution_id) == "PAUSED"
            assert api.post(f"/api/v1/executions/{execution_id}/resume").status_code == 200
        finished = wait_all(api, gated, {"SUCCESS"})
        assert all(len(e["taskRunList"]) == 2 for e in finished.values())


def test_sigterm_lets_a_running_attempt_finish_within_the_deadline(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "sleepy.yaml").write_text(FLOWS["sleepy.yaml"])
    (flows / "long.yaml").write_text(FLOWS["long.yaml"])
    data = tmp_path / "data"
    args = ("--flows", str(flows), "--shutdown-timeout", "5")
    with running_server(data, *args) as server, server.client() as api:
        quick = api.post("/api/v1/executions/company.team/sleepy", json={"n": 7}).json()["id"]
        slow = api.post("/api/v1/executions/company.team/long", json={}).json()["id"]
        deadline = time.monotonic() + 10
        while "nap" not in [
            t["taskId"] for t in api.get(f"/api/v1/executions/{quick}").json()["taskRunList"]
        ]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        waited = time.monotonic() - started
    assert waited < 5 + 3  # the one-hour sleep did not hold the stop beyond its deadline
    with running_server(data, *args) as again, again.client() as api:
        execution = wait_all(api, [quick], {"SUCCESS"})[quick]
        nap = next(t for t in execution["taskRunList"] if t["taskId"] == "nap")
        assert len(nap["attempts"]) == 1  # finished during the grace period: not run again
        deadline = time.monotonic() + 10
        while len(api.get(f"/api/v1/executions/{slow}").json()["taskRunList"][0]["attempts"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        forever = api.get(f"/api/v1/executions/{slow}").json()["taskRunList"][0]
        assert forever["attempts"][0]["state"]["current"] == "FAILED"  # lost, then retried
        assert len(forever["attempts"]) == 2
        logs = api.get(f"/api/v1/logs/{slow}", params={"minLevel": "ERROR"}).json()
        assert any("was running when Tiercel stopped" in entry["message"] for entry in logs)
        api.delete(f"/api/v1/executions/{slow}/kill")


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "long.yaml").write_text(FLOWS["long.yaml"])
    with running_server(
        tmp_path / "data", "--flows", str(flows), "--shutdown-timeout", "60"
    ) as server:
        with server.client() as api:
            api.post("/api/v1/executions/company.team/long", json={})
            time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        started = time.monotonic()
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(20) == 0
        assert time.monotonic() - started < 15
        assert "stopping at once" in server.log


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket
    import subprocess

    from tests.server_process import TIERCEL

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*TIERCEL, "server", "--port", str(port), "--data", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
