"""io.kestra.plugin.core.output: OutputValues."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from runtime.model._task import Task
from runtime.tasks._api import RunContext
from runtime.tasks._registry import task_type


@task_type("io.kestra.plugin.core.output.OutputValues", "OutputValues")
class OutputValues(Task, kw_only=True):
    """Renders ``values`` and exposes them as the output ``values``."""

    effects_outside: ClassVar[bool] = False

    values: dict[str, Any] = msgspec.field(default_factory=dict)

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"values": ctx.render(self.values)}
