"""``tiercel executions ...`` against a running server."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.server_process import TIERCEL, ServerProcess, running_server

FLOWS = {
    "gate.yaml": """
id: gate
namespace: company.team
tasks:
  - id: ask
    type: Pause
    onResume:
      - {id: reason, type: STRING}
  - {id: after, type: Log, message: "because {{ outputs.ask.onResume.reason }}"}
""",
    "broken.yaml": """
id: broken
namespace: company.team
tasks:
  - {id: boom, type: io.kestra.plugin.core.execution.Fail, errorMessage: "on purpose"}
""",
    "slow.yaml": """
id: slow
namespace: company.team
tasks:
  - {id: wait, type: Sleep, duration: PT60S}
""",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli")
    flows = root / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / name).write_text(text)
    with running_server(root / "data", "--flows", str(flows)) as process:
        yield process


def tiercel(
    server: ServerProcess, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["TIERCEL_SERVER"] = server.url
    env["TIERCEL_API_TOKEN"] = server.token if token is None else token
    return subprocess.run([*TIERCEL, *args], capture_output=True, text=True, timeout=60, env=env)


def start(server: ServerProcess, flow: str) -> str:
    with server.client() as api:
        execution_id: str = api.post(f"/api/v1/executions/company.team/{flow}", json={}).json()[
            "id"
        ]
        return execution_id


def wait_state(server: ServerProcess, execution_id: str, state: str) -> None:
    with server.client() as api:
        deadline = time.monotonic() + 20
        while api.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"] != state:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_list_show_and_logs(server: ServerProcess) -> None:
    execution_id = start(server, "broken")
    wait_state(server, execution_id, "FAILED")
    listed = tiercel(server, "executions", "list", "--flow", "broken", "--json")
    assert listed.returncode == 0, listed.stderr
    assert execution_id in [e["id"] for e in json.loads(listed.stdout)["results"]]
    text = tiercel(server, "executions", "list", "-s", "FAILED")
    assert f"{execution_id}  FAILED" in text.stdout
    shown = tiercel(server, "executions", "show", execution_id)
    assert "state    FAILED" in shown.stdout
    assert "- boom: FAILED (1 attempt)" in shown.stdout
    logs = tiercel(server, "executions", "logs", execution_id, "--level", "ERROR")
    assert "ERROR [boom] on purpose" in logs.stdout


def test_pause_resume_and_follow(server: ServerProcess) -> None:
    execution_id = start(server, "gate")
    wait_state(server, execution_id, "PAUSED")
    refused = tiercel(server, "executions", "resume", execution_id)
    assert refused.returncode == 1
    assert "error 422" in refused.stderr
    assert "reason" in refused.stderr
    resumed = tiercel(server, "executions", "resume", execution_id, "-i", "reason=tests")
    assert resumed.returncode == 0, resumed.stderr
    followed = tiercel(server, "executions", "follow", execution_id)
    assert followed.returncode == 0
    assert "ExecutionEnded" in followed.stdout.splitlines()[-1]
    assert "-> SUCCESS" in followed.stdout.splitlines()[-1]
    logs = tiercel(server, "executions", "logs", execution_id, "--json")
    assert any(json.loads(line)["message"] == "because tests" for line in logs.stdout.splitlines())


def test_kill_pause_and_restart(server: ServerProcess) -> None:
    running = start(server, "slow")
    wait_state(server, running, "RUNNING")
    assert tiercel(server, "executions", "pause", running).returncode == 0
    killed = tiercel(server, "executions", "kill", running, "--json")
    assert killed.returncode == 0
    wait_state(server, running, "KILLED")
    broken = start(server, "broken")
    wait_state(server, broken, "FAILED")
    restarted = tiercel(server, "executions", "restart", broken)
    assert restarted.returncode == 0
    assert "RESTARTED" in restarted.stdout


def test_errors_are_one_clear_line(server: ServerProcess) -> None:
    denied = tiercel(server, "executions", "list", token="not-the-right-token")
    assert denied.returncode == 1
    assert denied.stderr.startswith("error 401: authentication required")
    missing = tiercel(server, "executions", "show", "nope")
    assert missing.returncode == 1
    assert "error 404" in missing.stderr
    env = dict(os.environ, TIERCEL_SERVER="http://127.0.0.1:9")
    unreachable = subprocess.run(
        [*TIERCEL, "executions", "list"], capture_output=True, text=True, timeout=60, env=env
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("cannot reach http://127.0.0.1:9")
    assert "Traceback" not in unreachable.stderr


def test_execution_ids_never_start_like_an_option() -> None:
    """Regression: ids are url-safe base 64, and one in 64 began with "-", which the
    command line read as an option ("No such option: -o"): that execution could not be
    resumed, killed or followed with ``tiercel executions``."""
    from runtime.engine._execution import new_id

    ids = [new_id() for _ in range(5000)]
    assert not [i for i in ids if i[0] in "-_"]
    assert all(len(i) == 22 for i in ids)
    assert len(set(ids)) == len(ids)
