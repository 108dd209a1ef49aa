"""Every variable Kestra gives expressions, as a task sees it."""

from __future__ import annotations

import pytest

from runtime.engine import Runtime
from runtime.testing import run_flow

VARIABLES = """
id: vars
namespace: company.team
labels: {team: data}
inputs:
  - {id: who, type: STRING}
variables:
  greeting: hello
tasks:
  - id: loop
    type: ForEach
    values: ["a"]
    tasks:
      - id: seq
        type: Sequential
        tasks:
          - id: show
            type: Return
            format: >-
              {{ flow.id }}|{{ flow.namespace }}|{{ flow.revision }}|{{ execution.id == execution.originalId }}|{{ task.id }}|{{ task.type }}|{{ taskrun.value }}|{{ taskrun.attemptsCount }}|{{ taskrun.parentId == parent.taskrun.value ? 'no' : 'yes' }}|{{ parent.taskrun.value }}|{{ parents | length }}|{{ inputs.who }}|{{ vars.greeting }}|{{ labels.team }}|{{ labels.system.correlationId == execution.id }}|{{ envs.home_town }}
"""


async def test_every_variable_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV_HOME_TOWN", "Lyon")
    async with Runtime() as runtime:
        execution = await runtime.run(VARIABLES, {"who": "you"})
    show = next(t for t in execution.task_run_list if t.task_id == "show")
    assert show.outputs is not None
    assert show.outputs["value"].split("|") == [
        "vars",
        "company.team",
        "1",
        "true",
        "show",
        "Return",
        "",
        "0",
        "yes",
        "a",
        "1",
        "you",
        "hello",
        "data",
        "true",
        "Lyon",
    ]


async def test_task_run_start_date_and_execution_start_date_are_dates() -> None:
    captured = await run_flow(
        """
id: dates
namespace: t
tasks:
  - {id: d, type: Return, format: "{{ taskrun.startDate | date('yyyy') }}-{{ execution.startDate | date('yyyy') }}"}
"""
    )
    assert captured.outputs("d") == {"value": "2026-2026"}


async def test_trigger_variables_come_from_the_execution_trigger() -> None:
    captured = await run_flow(
        "id: trig\nnamespace: t\ntasks:\n  - {id: t, type: Return, format: '{{ trigger.from }}'}\n",
        trigger={"type": "test", "variables": {"from": "a schedule"}},
    )
    assert captured.outputs("t") == {"value": "a schedule"}


async def test_inputs_is_undefined_when_the_flow_has_none() -> None:
    captured = await run_flow(
        "id: none\nnamespace: t\ntasks:\n  - {id: t, type: Return, format: '{{ inputs.x }}'}\n"
    )
    assert captured.state == "FAILED"
    assert any("Unable to find `inputs`" in log.message for log in captured.logs)
