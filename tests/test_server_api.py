"""The HTTP API over real HTTP, against a ``tiercel server`` child process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_process import ServerProcess, running_server

FLOWS = {
    "hello.yaml": """
id: hello
namespace: company.team
labels: {team: data}
inputs:
  - {id: who, type: STRING, defaults: world}
  - {id: times, type: INT, defaults: 1}
tasks:
  - {id: greet, type: Return, format: "hello {{ inputs.who }} x{{ inputs.times }}"}
  - {id: count, type: io.kestra.plugin.scripts.shell.Commands, commands: ['echo ''::{"metrics":[{"name":"rows","type":"counter","value":4}]}::''']}
outputs:
  - {id: greeting, type: STRING, value: "{{ outputs.greet.value }}"}
""",
    "upload.yaml": """
id: upload
namespace: company.team
inputs:
  - {id: data, type: FILE}
tasks:
  - {id: size, type: Return, format: "{{ read(inputs.data) | length }}"}
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles: {in.txt: "{{ inputs.data }}"}
    outputFiles: [copy.txt]
    commands: ["cat in.txt > copy.txt", "echo copied >> copy.txt"]
""",
    "slow.yaml": """
id: slow
namespace: company.team
tasks:
  - {id: wait, type: Sleep, duration: PT60S}
""",
    "approve.yaml": """
id: approve
namespace: company.team
tasks:
  - id: ask
    type: Pause
    onResume:
      - {id: approved, type: BOOLEAN}
  - {id: after, type: Return, format: "{{ outputs.ask.onResume.approved }}"}
""",
    "broken.yaml": """
id: broken
namespace: company.team
tasks:
  - {id: first, type: Return, format: one}
  - {id: boom, type: io.kestra.plugin.core.execution.Fail, errorMessage: "on purpose"}
  - {id: last, type: Return, format: done}
""",
    "hook.yaml": """
id: hook
namespace: company.team
tasks:
  - {id: echo, type: Return, format: "{{ trigger.body.name }} {{ trigger.parameters.x[0] }}"}
triggers:
  - id: web
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cr3t-k3y-long-enough
    labels: {source: webhook}
    conditions:
      - {type: io.kestra.plugin.core.condition.Expression, expression: "{{ trigger.body.name != 'blocked' }}"}
""",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("server")
    flows = root / "flows"
    flows.mkdir()
    for name, text in FLOWS.items():
        (flows / name).write_text(text)
    with running_server(root / "data", "--flows", str(flows)) as process:
        yield process


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def start(
    api: httpx.Client, flow: str, inputs: dict[str, Any] | None = None, **params: Any
) -> dict[str, Any]:
    response = api.post(f"/api/v1/executions/company.team/{flow}", json=inputs or {}, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(
    api: httpx.Client, execution_id: str, *states: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = api.get(f"/api/v1/executions/{execution_id}").json()
        if execution["state"]["current"] in states:
            return execution
        assert time.monotonic() < deadline, f"still {execution['state']['current']}"
        time.sleep(0.05)


def test_health_needs_no_token_and_the_api_does(server: ServerProcess) -> None:
    with server.client(token="") as anonymous:
        assert anonymous.get("/health").json()["status"] == "UP"
        denied = anonymous.get("/api/v1/executions/search")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert denied.json()["message"].startswith("authentication required")
    with server.client(token="wrong-token-of-good-length") as wrong:
        assert wrong.get("/api/v1/executions/search").status_code == 401


def test_create_with_json_inputs_and_wait(api: httpx.Client) -> None:
    execution = start(api, "hello", {"who": "api", "times": "3"}, wait="true", labels="env:test")
    assert execution["state"]["current"] == "SUCCESS"
    assert execution["inputs"] == {"who": "api", "times": 3}
    assert execution["outputs"] == {"greeting": "hello api x3"}
    assert {"key": "env", "value": "test"} in execution["labels"]
    assert {"key": "team", "value": "data"} in execution["labels"]
    again = api.get(f"/api/v1/executions/{execution['id']}").json()
    assert again == execution


def test_create_with_multipart_inputs_and_a_file(api: httpx.Client) -> None:
    response = api.post(
        "/api/v1/executions/company.team/upload",
        params={"wait": "true"},
        files={"data": ("notes.txt", b"line one\nline two\n", "text/plain")},
    )
    assert response.status_code == 200, response.text
    execution = response.json()
    assert execution["state"]["current"] == "SUCCESS", execution
    uri = execution["inputs"]["data"]
    assert uri.startswith("kestra:///company/team/upload/executions/")
    assert uri.endswith("notes.txt")
    assert execution["taskRunList"][0]["outputs"]["value"] == "18"
    downloaded = api.get(f"/api/v1/executions/{execution['id']}/file", params={"path": uri})
    assert downloaded.content == b"line one\nline two\n"
    output = execution["taskRunList"][1]["outputs"]["outputFiles"]["copy.txt"]
    metas = api.get(f"/api/v1/executions/{execution['id']}/file/metas", params={"path": output})
    assert metas.json()["size"] == len(b"line one\nline two\ncopied\n")
    assert metas.json()["name"] == "copy.txt"


def test_file_inputs_never_read_server_paths(api: httpx.Client) -> None:
    response = api.post("/api/v1/executions/company.team/upload", json={"data": "/etc/passwd"})
    assert response.status_code == 422
    assert "must be uploaded as a file" in response.json()["errors"][0]["message"]
    other = start(api, "hello", wait="true")
    outside = api.get(
        f"/api/v1/executions/{other['id']}/file",
        params={"path": "kestra:///company/team/upload/executions/x/inputs/data/notes.txt"},
    )
    assert outside.status_code == 403
    escape = api.get(
        f"/api/v1/executions/{other['id']}/file", params={"path": "kestra:///../../etc/passwd"}
    )
    assert escape.status_code == 400


def test_invalid_inputs_and_unknown_flows_are_clear_errors(api: httpx.Client) -> None:
    bad = api.post("/api/v1/executions/company.team/hello", json={"times": "many"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["message"].startswith("input 'times'")
    missing = api.post("/api/v1/executions/company.team/nope", json={})
    assert missing.status_code == 404
    assert missing.json()["message"] == "no flow company.team.nope"
    garbage = api.post(
        "/api/v1/executions/company.team/hello",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert garbage.status_code == 400
    odd = api.post(
        "/api/v1/executions/company.team/hello",
        content=b"x",
        headers={"content-type": "application/xml"},
    )
    assert odd.status_code == 415


def test_search_filters_and_pages(api: httpx.Client) -> None:
    ids = [
        start(api, "hello", {"who": str(n)}, wait="true", labels=f"batch:b{n % 2}")["id"]
        for n in range(5)
    ]
    page = api.get("/api/v1/executions/search", params={"flowId": "hello", "size": 2}).json()
    assert page["total"] >= 5
    assert [e["id"] for e in page["results"]] == ids[::-1][:2]
    labelled = api.get(
        "/api/v1/executions/search", params={"labels": "batch:b1", "state": "SUCCESS"}
    ).json()
    assert sorted(e["id"] for e in labelled["results"]) == sorted([ids[1], ids[3]])
    assert api.get("/api/v1/executions/search", params={"state": "BOGUS"}).status_code == 400
    assert api.get("/api/v1/executions/search", params={"size": "0"}).status_code == 400
    assert (
        api.get("/api/v1/executions/search", params={"startDate": "yesterday"}).status_code == 400
    )


def test_kill_a_running_execution(api: httpx.Client) -> None:
    execution = start(api, "slow")
    wait_for(api, execution["id"], "RUNNING")
    killed = api.delete(f"/api/v1/executions/{execution['id']}/kill")
    assert killed.status_code == 202
    done = wait_for(api, execution["id"], "KILLED")
    assert done["taskRunList"][0]["state"]["current"] == "KILLED"
    again = api.delete(f"/api/v1/executions/{execution['id']}/kill")
    assert again.status_code == 409
    assert "KILLED" in again.json()["message"]


def test_pause_and_resume_with_validated_inputs(api: httpx.Client) -> None:
    execution = start(api, "approve")
    wait_for(api, execution["id"], "PAUSED")
    refused = api.post(f"/api/v1/executions/{execution['id']}/resume", json={"approved": "maybe"})
    assert refused.status_code == 422
    assert "approved" in refused.json()["errors"][0]["message"]
    assert api.get(f"/api/v1/executions/{execution['id']}").json()["state"]["current"] == "PAUSED"
    resumed = api.post(
        f"/api/v1/executions/{execution['id']}/resume", files={"approved": (None, "true")}
    )
    assert resumed.status_code == 200, resumed.text
    done = wait_for(api, execution["id"], "SUCCESS")
    assert done["taskRunList"][1]["outputs"] == {"value": "true"}
    assert api.post(f"/api/v1/executions/{execution['id']}/pause").status_code == 409


def test_pause_a_running_execution_then_resume_it(api: httpx.Client) -> None:
    execution = start(api, "slow")
    wait_for(api, execution["id"], "RUNNING")
    paused = api.post(f"/api/v1/executions/{execution['id']}/pause")
    assert paused.status_code == 200
    assert paused.json()["state"]["current"] == "PAUSED"
    assert api.post(f"/api/v1/executions/{execution['id']}/resume").status_code == 200
    assert api.delete(f"/api/v1/executions/{execution['id']}/kill").status_code == 202
    wait_for(api, execution["id"], "KILLED")


def test_restart_replay_state_change_and_status_change(api: httpx.Client) -> None:
    failed = start(api, "broken", wait="true")
    assert failed["state"]["current"] == "FAILED"
    first, boom = failed["taskRunList"]
    restarted = api.post(f"/api/v1/executions/{failed['id']}/restart")
    assert restarted.status_code == 200
    assert restarted.json()["state"]["current"] == "RESTARTED"
    again = wait_for(api, failed["id"], "FAILED")
    assert len(again["taskRunList"][1]["attempts"]) == 2

    marked = api.post(
        f"/api/v1/executions/{failed['id']}/state",
        json={"taskRunId": boom["id"], "state": "SUCCESS"},
    )
    assert marked.status_code == 200, marked.text
    done = wait_for(api, failed["id"], "SUCCESS")
    assert [t["taskId"] for t in done["taskRunList"]] == ["first", "boom", "last"]

    replay = api.post(
        f"/api/v1/executions/{failed['id']}/replay", params={"taskRunId": first["id"]}
    )
    assert replay.status_code == 200
    replayed = wait_for(api, replay.json()["id"], "FAILED")
    assert replayed["parentId"] == failed["id"]

    changed = api.post(
        f"/api/v1/executions/{replayed['id']}/change-status", params={"status": "WARNING"}
    )
    assert changed.status_code == 200
    assert changed.json()["state"]["current"] == "WARNING"
    not_final = api.post(
        f"/api/v1/executions/{replayed['id']}/change-status", params={"status": "RUNNING"}
    )
    assert not_final.status_code == 409
    assert api.post(f"/api/v1/executions/{failed['id']}/replay").status_code == 400
    bad_body = api.post(f"/api/v1/executions/{failed['id']}/state", json={"taskRunId": 3})
    assert bad_body.status_code == 422


def test_evaluate_an_expression_in_an_execution_or_one_of_its_task_runs(
    api: httpx.Client,
) -> None:
    execution = start(api, "hello", {"who": "eval"}, wait="true")
    url = f"/api/v1/executions/{execution['id']}/eval"
    greet = next(t for t in execution["taskRunList"] if t["taskId"] == "greet")
    typed = api.post(url, content="{{ inputs.times + 1 }}")
    assert typed.json() == {"result": 2, "error": None}
    text = api.post(url, content="{{ outputs.greet.value | upper }}!")
    assert text.json() == {"result": "HELLO EVAL X1!", "error": None}
    in_task_run = api.post(f"{url}/{greet['id']}", content="{{ task.id }} {{ taskrun.id }}")
    assert in_task_run.json()["result"] == f"greet {greet['id']}"
    missing = api.post(url, content="{{ taskrun.id }}")
    assert missing.status_code == 200
    assert missing.json()["result"] is None
    assert "Unable to find `taskrun`" in missing.json()["error"]
    escape = api.post(url, content="{{ ''.__class__.__mro__ }}").json()
    assert escape["result"] is None
    assert escape["error"]
    assert api.post(f"{url}/no-such-run", content="{{ 1 }}").status_code == 404
    assert api.post("/api/v1/executions/nope/eval", content="{{ 1 }}").status_code == 404


def test_delete_an_execution(api: httpx.Client) -> None:
    execution = start(api, "hello", wait="true")
    assert api.delete(f"/api/v1/executions/{execution['id']}").status_code == 204
    assert api.get(f"/api/v1/executions/{execution['id']}").status_code == 404
    assert api.get(f"/api/v1/logs/{execution['id']}").status_code == 404
    running = start(api, "slow")
    wait_for(api, running["id"], "RUNNING")
    assert api.delete(f"/api/v1/executions/{running['id']}").status_code == 409
    api.delete(f"/api/v1/executions/{running['id']}/kill")


def test_logs_with_filters_and_download(api: httpx.Client) -> None:
    failed = start(api, "broken", wait="true")
    logs = api.get(f"/api/v1/logs/{failed['id']}").json()
    assert any(entry["message"] == "on purpose" for entry in logs)
    errors = api.get(f"/api/v1/logs/{failed['id']}", params={"minLevel": "ERROR"}).json()
    assert errors
    assert all(entry["level"] == "ERROR" for entry in errors)
    boom = api.get(f"/api/v1/logs/{failed['id']}", params={"taskId": "boom"}).json()
    assert boom
    assert all(entry["taskId"] == "boom" for entry in boom)
    text = api.get(f"/api/v1/logs/{failed['id']}/download")
    assert text.headers["content-type"].startswith("text/plain")
    assert "ERROR [boom] on purpose" in text.text
    assert api.get(f"/api/v1/logs/{failed['id']}", params={"minLevel": "LOUD"}).status_code == 400


def test_metrics_per_execution_and_aggregated(api: httpx.Client) -> None:
    executions = [start(api, "hello", wait="true") for _ in range(2)]
    metrics = api.get(f"/api/v1/metrics/{executions[0]['id']}").json()
    assert [(m["name"], m["value"]) for m in metrics] == [("rows", 4.0)]
    aggregate = api.get("/api/v1/metrics/aggregates/company.team/hello/rows").json()
    assert aggregate["count"] >= 2
    assert aggregate["max"] == 4.0


def test_flow_lifecycle(api: httpx.Client) -> None:
    text = "id: made\nnamespace: company.api\ntasks:\n  - {id: a, type: Return, format: one}\n"
    created = api.post(
        "/api/v1/flows", content=text, headers={"content-type": "application/x-yaml"}
    )
    assert created.status_code == 200, created.text
    assert created.json()["revision"] == 1
    assert created.json()["source"] == text
    duplicate = api.post("/api/v1/flows", content=text)
    assert duplicate.status_code == 409
    updated = api.put("/api/v1/flows/company.api/made", content=text.replace("one", "two"))
    assert updated.json()["revision"] == 2
    same = api.put("/api/v1/flows/company.api/made", content=text.replace("one", "two"))
    assert same.json()["revision"] == 2
    revisions = api.get("/api/v1/flows/company.api/made/revisions").json()
    assert [r["revision"] for r in revisions] == [1, 2]
    assert (
        api.get("/api/v1/flows/company.api/made", params={"revision": 1}).json()["source"] == text
    )
    listed = api.get("/api/v1/flows/company.api").json()
    assert [f["id"] for f in listed] == ["made"]
    found = api.get("/api/v1/flows/search", params={"namespace": "company", "q": "MAD"}).json()
    assert [f["id"] for f in found["results"]] == ["made"]
    run = start_in(api, "company.api", "made")
    assert run["taskRunList"][0]["outputs"] == {"value": "two"}
    assert api.delete("/api/v1/flows/company.api/made").status_code == 204
    assert api.get("/api/v1/flows/company.api/made").status_code == 404
    assert api.post("/api/v1/executions/company.api/made", json={}).status_code == 404
    assert api.get(f"/api/v1/executions/{run['id']}").status_code == 200


def start_in(api: httpx.Client, namespace: str, flow: str) -> dict[str, Any]:
    response = api.post(f"/api/v1/executions/{namespace}/{flow}", params={"wait": "true"}, json={})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_invalid_flows_are_refused_with_line_and_path(api: httpx.Client) -> None:
    text = (
        "id: bad\nnamespace: company.api\ntasks:\n  - id: a\n    type: Return\n    formatt: one\n"
    )
    refused = api.post("/api/v1/flows", content=text)
    assert refused.status_code == 422
    error = refused.json()["errors"][0]
    assert error["line"] == 6
    assert error["path"] == "tasks[0].formatt"
    mismatch = api.put(
        "/api/v1/flows/company.team/hello",
        content="id: other\nnamespace: company.team\ntasks:\n  - {id: a, type: Return, format: x}\n",
    )
    assert mismatch.status_code == 422
    checked = api.post("/api/v1/flows/validate", content=text + "---\n" + FLOWS["slow.yaml"]).json()
    assert [bool(r["errors"]) for r in checked] == [True, False]
    assert checked[1]["flow"] == "slow"


def test_webhook_starts_the_flow_with_the_key_as_credential(server: ServerProcess) -> None:
    with server.client(token="") as anonymous:
        started = anonymous.post(
            "/api/v1/executions/webhook/company.team/hook/s3cr3t-k3y-long-enough",
            params={"x": "1"},
            json={"name": "ada"},
        )
        assert started.status_code == 200, started.text
        wrong = anonymous.post("/api/v1/executions/webhook/company.team/hook/guess")
        assert wrong.status_code == 401
        unknown = anonymous.post(
            "/api/v1/executions/webhook/company.team/nope/s3cr3t-k3y-long-enough"
        )
        assert unknown.status_code == 401
    with server.client() as api:
        done = wait_for(api, started.json()["id"], "SUCCESS")
    assert done["taskRunList"][0]["outputs"] == {"value": "ada 1"}
    assert {"key": "source", "value": "webhook"} in done["labels"]
    assert done["trigger"]["type"] == "io.kestra.plugin.core.trigger.Webhook"
    with server.client(token="") as anonymous:
        blocked = anonymous.post(
            "/api/v1/executions/webhook/company.team/hook/s3cr3t-k3y-long-enough",
            json={"name": "blocked"},
        )
    assert blocked.status_code == 404
    assert "conditions do not hold" in blocked.json()["message"]
    assert "authorization" not in done["trigger"]["variables"]["headers"]


def test_request_bodies_over_the_limit_are_refused(api: httpx.Client) -> None:
    too_big = api.post("/api/v1/flows", content=b"x" * (1024 * 1024 + 1))
    assert too_big.status_code == 413
    assert "limit" in too_big.json()["message"]

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 65536

    streamed = api.post("/api/v1/flows/validate", content=chunks())
    assert streamed.status_code == 413


def test_cors_is_off_by_default(api: httpx.Client) -> None:
    preflight = api.options(
        "/api/v1/executions/search",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = api.get("/api/v1/executions/search", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_errors_are_json_without_stack_traces(api: httpx.Client) -> None:
    for response in (
        api.get("/api/v1/nope"),
        api.put("/api/v1/executions/search"),
        api.get("/api/v1/executions/missing"),
    ):
        body = response.json()
        assert set(body) == {"message", "status", "errors"}
        assert body["status"] == response.status_code
        assert "Traceback" not in response.text


def test_prometheus_metrics(api: httpx.Client) -> None:
    execution = start(api, "hello", wait="true")
    text = api.get("/metrics").text
    assert "# TYPE tiercel_executions_ended_total counter" in text
    assert (
        'tiercel_executions_ended_total{namespace="company.team",flow="hello",state="SUCCESS"}'
        in text
    )
    assert (
        'tiercel_execution_duration_seconds_bucket{namespace="company.team",flow="hello",state="SUCCESS",le="+Inf"}'
        in text
    )
    assert (
        'tiercel_http_requests_total{method="POST",route="/api/v1/executions/{namespace}/{flowId}",status="200"}'
        in text
    )
    assert execution["id"] not in text  # no unbounded labels


def test_flow_files_are_reloaded_on_change(server: ServerProcess, api: httpx.Client) -> None:
    folder = server.data.parent / "flows"
    (folder / "late.yaml").write_text(
        "id: late\nnamespace: company.team\ntasks:\n  - {id: a, type: Return, format: v1}\n"
    )
    deadline = time.monotonic() + 10
    while api.get("/api/v1/flows/company.team/late").status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (folder / "late.yaml").write_text(
        "id: late\nnamespace: company.team\ntasks:\n  - {id: a, type: Return, format: v2}\n"
    )
    while api.get("/api/v1/flows/company.team/late").json()["revision"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (folder / "late.yaml").unlink()
    while api.get("/api/v1/flows/company.team/late").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert Path(folder / "hello.yaml").exists()
