"""Schedules and Flow triggers in the daemon, over real HTTP and a real restart."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.server_process import running_server

TICK = """
id: tick
namespace: company.team
tasks:
  - {id: when, type: Return, format: "{{ trigger.date }}"}
triggers:
  - {id: every-second, type: Schedule, cron: "* * * * * *", withSeconds: true}
"""

UPSTREAM = """
id: upstream
namespace: company.team
tasks:
  - {id: made, type: Return, format: "{{ inputs.n }}"}
inputs:
  - {id: n, type: INT}
outputs:
  - {id: n, type: INT, value: "{{ outputs.made.value }}"}
"""

DOWNSTREAM = """
id: downstream
namespace: company.other
inputs:
  - {id: got, type: STRING}
tasks:
  - {id: echo, type: Return, format: "{{ inputs.got }} from {{ trigger.flowId }}"}
triggers:
  - id: after-upstream
    type: io.kestra.plugin.core.trigger.Flow
    inputs: {got: "{{ trigger.outputs.n }}"}
    conditions:
      - {type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: company.team, flowId: upstream}
      - {type: io.kestra.plugin.core.condition.ExecutionStatus, in: [SUCCESS]}
"""


def scheduled_dates(api: httpx.Client) -> list[datetime]:
    found = api.get("/api/v1/executions/search", params={"flowId": "tick", "size": 1000}).json()[
        "results"
    ]
    return sorted(datetime.fromisoformat(e["trigger"]["variables"]["date"]) for e in found)


def test_a_schedule_fires_every_date_once_across_a_restart(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tick.yaml").write_text(TICK)
    data = tmp_path / "data"
    with running_server(data, "--flows", str(flows)) as server, server.client() as api:
        deadline = time.monotonic() + 15
        while len(scheduled_dates(api)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    time.sleep(2.5)  # down while dates pass: the default policy (ALL) fires them at start
    with running_server(data, "--flows", str(flows)) as server, server.client() as api:
        time.sleep(2.0)
        dates = scheduled_dates(api)
        executions = api.get(
            "/api/v1/executions/search", params={"flowId": "tick", "size": 1000}
        ).json()["results"]
    assert len(dates) == len(set(dates))  # never twice
    gaps = [b - a for a, b in itertools.pairwise(dates)]
    assert all(gap == timedelta(seconds=1) for gap in gaps), gaps  # never skipped
    assert len(dates) >= 7
    assert all(
        e["state"]["current"] == "SUCCESS" for e in executions if e["state"]["current"] != "RUNNING"
    )


def wait_for(api: httpx.Client, params: dict[str, Any], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        found: list[dict[str, Any]] = api.get("/api/v1/executions/search", params=params).json()[
            "results"
        ]
        done = [e for e in found if e["state"]["current"] == "SUCCESS"]
        if len(done) >= count:
            return done
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def test_a_flow_trigger_starts_a_flow_when_another_ends(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "upstream.yaml").write_text(UPSTREAM)
    (flows / "downstream.yaml").write_text(DOWNSTREAM)
    with running_server(tmp_path / "data", "--flows", str(flows)) as server, server.client() as api:
        upstream = api.post(
            "/api/v1/executions/company.team/upstream", params={"wait": "true"}, json={"n": 42}
        ).json()
        assert upstream["state"]["current"] == "SUCCESS"
        [downstream] = wait_for(api, {"flowId": "downstream"}, 1)
        assert downstream["taskRunList"][0]["outputs"] == {"value": "42 from upstream"}
        assert downstream["trigger"]["variables"]["executionId"] == upstream["id"]
        failed = api.post(
            "/api/v1/executions/company.team/upstream", params={"wait": "true"}, json={"n": "x"}
        )
        assert failed.status_code == 422  # never started: nothing to trigger
        time.sleep(0.5)
        assert len(wait_for(api, {"flowId": "downstream"}, 1)) == 1
