"""io.kestra.plugin.core.debug: Return and Echo."""

from __future__ import annotations

from typing import Any, ClassVar

from runtime.model._task import LogLevel, Task
from runtime.tasks._api import RunContext
from runtime.tasks._registry import task_type


@task_type("io.kestra.plugin.core.debug.Return", "io.kestra.core.tasks.debugs.Return", "Return")
class Return(Task, kw_only=True):
    """Renders ``format`` and returns it as the output ``value``."""

    effects_outside: ClassVar[bool] = False

    format: str | None = None

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        return {"value": ctx.render_text(self.format) if self.format is not None else None}


@task_type("io.kestra.plugin.core.debug.Echo", "io.kestra.core.tasks.debugs.Echo", "Echo")
class Echo(Task, kw_only=True):
    """Logs ``format`` at ``level`` (deprecated in Kestra in favour of Log)."""

    effects_outside: ClassVar[bool] = False

    format: str | None = None
    level: LogLevel = LogLevel.INFO

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        ctx.log(self.level.value, ctx.render_text(self.format or ""))
        return None
