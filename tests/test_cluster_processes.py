"""Scale-out for real: 1 API node, 2 executors and 3 workers as separate OS processes on one
PostgreSQL, a mixed workload, and kill -9 of a worker and of an executor in the middle."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.server_process import ServerProcess, running_server

TOKEN = "cluster-test-token-long-enough"

WORK = """
id: work
namespace: cluster
inputs:
  - {id: n, type: INT}
tasks:
  - id: steps
    type: ForEach
    values: [1, 2, 3]
    concurrencyLimit: 1
    tasks:
      - id: step
        type: io.kestra.plugin.scripts.shell.Commands
        retry: {type: constant, interval: PT0.2S, maxAttempt: 5}
        commands:
          - sleep 0.4
          - echo "{{ taskrun.id }} {{ taskrun.attemptsCount }}" >> SIDE_EFFECTS
  - {id: done, type: Return, format: "{{ inputs.n }}"}
"""

FAN = """
id: fan
namespace: cluster
tasks:
  - id: each
    type: ForEach
    values: [a, b, c, d, e, f, g, h]
    concurrencyLimit: 0
    tasks:
      - {id: say, type: Return, format: "{{ taskrun.value }}", retry: {type: constant, interval: PT0.1S, maxAttempt: 3}}
"""

CHAINED = """
id: chained
namespace: cluster
inputs:
  - {id: upstream, type: STRING}
tasks:
  - {id: note, type: Return, format: "after {{ inputs.upstream }}"}
triggers:
  - id: after-fan
    type: io.kestra.plugin.core.trigger.Flow
    inputs: {upstream: "{{ trigger.executionId }}"}
    conditions:
      - {type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: cluster, flowId: fan}
"""

GATE = """
id: gate
namespace: cluster
tasks:
  - {id: wait, type: Pause}
  - {id: after, type: Return, format: resumed}
"""


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """A store in a schema of its own (dropped after the test)."""
    return postgres_url


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    base, _, params = url.partition("?")
    schema = dict(p.split("=", 1) for p in params.split("&") if p)["schema"]
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'SET search_path TO "{schema}"')
        return list(connection.execute(query).fetchall())


def pid_of(node_id: str) -> int:
    """Node ids are role-host-pid-suffix."""
    return int(node_id.split("-")[-2])


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_cluster_survives_losing_a_worker_and_an_executor(tmp_path: Path, pg_url: str) -> None:
    side_effects = tmp_path / "side-effects.txt"
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "work.yaml").write_text(WORK.replace("SIDE_EFFECTS", str(side_effects)))
    (flows / "fan.yaml").write_text(FAN)
    (flows / "gate.yaml").write_text(GATE)
    data = tmp_path / "data"
    env = {"TIERCEL_API_TOKEN": TOKEN, "TIERCEL_LEASE_SECONDS": "2"}
    common = ("--store", pg_url)
    with ExitStack() as stack:
        api = stack.enter_context(
            running_server(data, *common, "--role", "api", "--flows", str(flows), env=env)
        )
        executors: list[ServerProcess] = [
            stack.enter_context(running_server(data, *common, "--role", "executor", env=env))
            for _ in range(2)
        ]
        workers: list[ServerProcess] = [
            stack.enter_context(
                running_server(
                    data, *common, "--role", "worker", "--worker-concurrency", "4", env=env
                )
            )
            for _ in range(3)
        ]
        with api.client(token=TOKEN) as client:
            # a flow saved through the API node reaches the executors through the store;
            # its Flow trigger fires for ends on either executor (one node follows them)
            created = client.post(
                "/api/v1/flows", content=CHAINED, headers={"content-type": "application/x-yaml"}
            )
            assert created.status_code == 200, created.text
            ids = [
                client.post("/api/v1/executions/cluster/work", json={"n": n}).json()["id"]
                for n in range(6)
            ]
            ids += [
                client.post("/api/v1/executions/cluster/fan", json={}).json()["id"]
                for _ in range(2)
            ]
            gate = client.post("/api/v1/executions/cluster/gate", json={}).json()["id"]

            # kill -9 a worker in the middle of an attempt
            claimed = wait_until(
                lambda: rows(pg_url, "SELECT worker FROM task_queue WHERE state = 1 LIMIT 1"),
                30,
                "an attempt claimed by a worker",
            )
            victim_worker = pid_of(claimed[0][0])
            assert victim_worker in [w.process.pid for w in workers]
            os.kill(victim_worker, signal.SIGKILL)

            # kill -9 the executor owning the most executions
            owners = wait_until(
                lambda: rows(pg_url, "SELECT owner FROM execution_leases WHERE owner IS NOT NULL"),
                30,
                "executions owned by executors",
            )
            busiest = Counter(o for (o,) in owners).most_common(1)[0][0]
            victim_executor = pid_of(busiest)
            assert victim_executor in [e.process.pid for e in executors]
            os.kill(victim_executor, signal.SIGKILL)

            wait_until(
                lambda: (
                    client.get(f"/api/v1/executions/{gate}").json()["state"]["current"] == "PAUSED"
                ),
                30,
                "the gate to pause",
            )
            resumed = client.post(f"/api/v1/executions/{gate}/resume")
            assert resumed.status_code == 200, resumed.text

            def all_done() -> dict[str, dict[str, Any]] | None:
                found = {i: client.get(f"/api/v1/executions/{i}").json() for i in [*ids, gate]}
                if all(
                    e["state"]["current"] in ("SUCCESS", "FAILED", "KILLED", "WARNING")
                    for e in found.values()
                ):
                    return found
                return None

            finished: dict[str, dict[str, Any]] = wait_until(all_done, 90, "every execution to end")

            def chained() -> list[dict[str, Any]] | None:
                found = client.get(
                    "/api/v1/executions/search", params={"flowId": "chained", "size": 10}
                ).json()["results"]
                done = [e for e in found if e["state"]["current"] == "SUCCESS"]
                return done if len(done) >= 2 else None

            triggered = wait_until(chained, 60, "the flow-triggered executions")
            time.sleep(1.5)  # more reads of the same ends by the Flow triggers' node
            again = client.get(
                "/api/v1/executions/search", params={"flowId": "chained", "size": 10}
            ).json()["results"]
            # The API node's web UI shows executions that ran on other nodes.
            gantt = client.get(f"/ui/executions/{ids[0]}/gantt")
            assert gantt.status_code == 200
            assert gantt.text.count('data-task="step"') == 3
            listed = client.get("/ui/executions/table", params={"namespace": "cluster"})
            assert all(f'data-execution="{i}"' in listed.text for i in ids[:3])
        survivor = next(e for e in executors if e.process.pid != victim_executor)
        assert "execution taken over" in survivor.log  # it took the dead one's executions
        leads = [e for e in executors if "flow-triggers" in e.log]
        assert leads, "an executor follows the ends for the Flow triggers"
        swept = "attempts lost: their workers stopped heartbeating"
        assert any(swept in e.log for e in executors)

    states = {i: e["state"]["current"] for i, e in finished.items()}
    assert set(states.values()) == {"SUCCESS"}, states
    attempts = [
        a for e in finished.values() for t in e["taskRunList"] for a in (t.get("attempts") or [])
    ]
    assert any(a["state"]["current"] == "FAILED" for a in attempts), "the killed worker's attempt"
    lines = side_effects.read_text().splitlines()
    # no attempt that finished ran again: each (task run, attempt) wrote at most one line,
    # and each task run's successful attempt wrote exactly one
    assert len(lines) == len(set(lines)), Counter(lines).most_common(3)
    steps = [t for i in ids for t in finished[i]["taskRunList"] if t["taskId"] == "step"]
    assert len(steps) == 18
    written = Counter(line.split()[0] for line in lines)
    for step in steps:
        assert step["state"]["current"] == "SUCCESS"
        assert 1 <= written[step["id"]] <= len(step["attempts"])
    assert [finished[i]["taskRunList"][-1]["outputs"] for i in ids[:6]] == [
        {"value": str(n)} for n in range(6)
    ]
    assert finished[gate]["taskRunList"][-1]["outputs"] == {"value": "resumed"}
    fans = {i for i in ids if finished[i]["flowId"] == "fan"}
    assert {e["trigger"]["variables"]["executionId"] for e in triggered} == fans
    assert len(again) == len(fans)  # each end started the flow once
