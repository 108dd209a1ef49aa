"""Helpers for testing flows and task plugins, like structlog's ``capture_logs``.

```python
from runtime.testing import run_flow

captured = await run_flow(FLOW_YAML, {"n": 3})
assert captured.state == "SUCCESS"
assert captured.outputs("loop", "2") == {"value": "2"}
```

``run_flow`` uses a virtual clock by default: retry waits and pauses take no real time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors import VirtualClock
from runtime.engine import Event, Execution, LogEmitted, Runtime, TaskRun
from runtime.flows import FlowRepository
from runtime.model import Flow

__all__ = ("CapturedExecution", "run_flow")


class CapturedExecution:
    """A finished execution with every event it produced."""

    def __init__(self, execution: Execution, events: list[Event]) -> None:
        self.execution = execution
        self.events = events

    @property
    def state(self) -> str:
        """The final state's name (``"SUCCESS"``...)."""
        return self.execution.state.current.value

    @property
    def logs(self) -> list[LogEmitted]:
        """Every log line, in order."""
        return [event for event in self.events if isinstance(event, LogEmitted)]

    def task_runs(self, task_id: str) -> list[TaskRun]:
        """The task runs of ``task_id``, in creation order."""
        return [t for t in self.execution.task_run_list if t.task_id == task_id]

    def outputs(self, task_id: str, value: str | None = None) -> dict[str, Any] | None:
        """The outputs of the (first) task run of ``task_id`` with loop ``value``."""
        for task_run in self.task_runs(task_id):
            if value is None or task_run.value == value:
                return task_run.outputs
        return None


async def run_flow(
    flow: Flow | str,
    inputs: Mapping[str, Any] | None = None,
    *,
    flows: FlowRepository | None = None,
    clock: Any = None,
    **options: Any,
) -> CapturedExecution:
    """Run ``flow`` in a fresh Runtime (virtual clock unless given) and capture everything."""
    async with Runtime(clock=clock or VirtualClock(), flows=flows) as runtime:
        handle = await runtime.start(flow, inputs, **options)
        execution = await handle.result()
        return CapturedExecution(execution, runtime.events_of(handle.id))
