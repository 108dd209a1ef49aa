"""Following executions and logs as server-sent events, over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runtime.client import TiercelClient
from tests.server_process import ServerProcess, running_server

FLOW = """
id: steps
namespace: company.team
tasks:
  - {id: one, type: Log, message: first}
  - id: gate
    type: Pause
  - id: each
    type: ForEach
    values: [a, b]
    tasks:
      - {id: shout, type: Log, message: "{{ taskrun.value }}", level: WARN}
  - {id: flaky, type: Log, message: "{{ taskrun.attemptsCount > 0 ? 'ok' : nope }}", retry: {type: constant, interval: PT0.05S, maxAttempt: 2}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("follow")
    flows = root / "flows"
    flows.mkdir()
    (flows / "steps.yaml").write_text(FLOW)
    with running_server(root / "data", "--flows", str(flows)) as process:
        yield process


def read_events(
    client: httpx.Client, path: str, headers: dict[str, str] | None = None
) -> list[tuple[str, str, dict[str, Any]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    with client.stream("GET", path, headers=headers or {}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id, name, data = "", "", ""
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif not line and data:
                events.append((event_id, name, json.loads(data)))
                event_id, name, data = "", "", ""
    return events


def test_follow_sees_every_state_change_in_order_then_ends(server: ServerProcess) -> None:
    with server.client() as api:
        execution = api.post("/api/v1/executions/company.team/steps", json={}).json()
        execution_id = execution["id"]
        seen: list[tuple[str, str, dict[str, Any]]] = []

        def follow() -> None:
            with server.client() as follower:
                seen.extend(read_events(follower, f"/api/v1/executions/{execution_id}/follow"))

        reader = threading.Thread(target=follow)
        reader.start()
        deadline = 100
        while api.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"] != "PAUSED":
            deadline -= 1
            assert deadline
            threading.Event().wait(0.05)
        assert api.post(f"/api/v1/executions/{execution_id}/resume").status_code == 200
        reader.join(30)
        assert not reader.is_alive()
        final = api.get(f"/api/v1/executions/{execution_id}").json()
    seqs = [int(event_id) for event_id, _, _ in seen]
    assert seqs == list(range(1, len(seqs) + 1))  # every event, in order, none twice
    assert [data["seq"] for _, _, data in seen] == seqs
    assert all(name == data["event"] for _, name, data in seen)
    execution_states = [
        d["state"] for _, n, d in seen if n in ("ExecutionStateChanged", "ExecutionEnded")
    ]
    assert execution_states == [h["state"] for h in final["state"]["histories"]][1:]
    assert execution_states[-1] == "SUCCESS"
    for task_run in final["taskRunList"]:
        current, changes = "CREATED", []
        for _, name, data in seen:
            if data.get("taskRunId") != task_run["id"]:
                continue
            if name == "TaskRunStateChanged":
                current = data["state"]
                changes.append(current)
            elif name == "AttemptStarted" and current != "RUNNING":
                current = "RUNNING"  # an attempt starting moves its task run to RUNNING
                changes.append(current)
        assert changes == [h["state"] for h in task_run["state"]["histories"]][1:], task_run[
            "taskId"
        ]


def test_last_event_id_resumes_where_the_client_left(server: ServerProcess) -> None:
    with server.client() as api:
        execution = api.post("/api/v1/executions/company.team/steps", json={}).json()
        execution_id = execution["id"]
        while api.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"] != "PAUSED":
            threading.Event().wait(0.05)
        api.post(f"/api/v1/executions/{execution_id}/resume")
        everything = read_events(api, f"/api/v1/executions/{execution_id}/follow")
        tail = read_events(api, f"/api/v1/executions/{execution_id}/follow", {"Last-Event-ID": "5"})
        assert [e[0] for e in tail] == [e[0] for e in everything][5:]
        documents = read_events(api, f"/api/v1/executions/{execution_id}/follow?view=execution")
        assert documents[-1][1] == "end"
        assert documents[-1][2]["state"]["current"] == "SUCCESS"
        logs = read_events(api, f"/api/v1/logs/{execution_id}/follow?minLevel=WARN&taskId=shout")
        assert [d["message"] for _, _, d in logs] == ["a", "b"]
        assert (
            api.get(
                f"/api/v1/executions/{execution_id}/follow", headers={"Last-Event-ID": "x"}
            ).status_code
            == 400
        )
        assert api.get("/api/v1/executions/nope/follow").status_code == 404


def test_the_client_follows_and_reconnects(server: ServerProcess) -> None:
    with server.client() as api:
        execution = api.post("/api/v1/executions/company.team/steps", json={}).json()
        while (
            api.get(f"/api/v1/executions/{execution['id']}").json()["state"]["current"] != "PAUSED"
        ):
            threading.Event().wait(0.05)
        api.post(f"/api/v1/executions/{execution['id']}/resume")
    with TiercelClient(server.url, server.token) as client:
        events = list(client.follow(execution["id"]))
    assert events[-1][1] == "ExecutionEnded"
    assert [int(e[0]) for e in events] == list(range(1, len(events) + 1))
