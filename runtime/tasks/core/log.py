"""io.kestra.plugin.core.log: Log."""

from __future__ import annotations

from typing import Any, ClassVar

from runtime.model._task import LogLevel, Task
from runtime.tasks._api import RunContext
from runtime.tasks._registry import task_type


@task_type("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log", "Log")
class Log(Task, kw_only=True):
    """Logs ``message`` (a string, or a list of strings logged one by one) at ``level``."""

    effects_outside: ClassVar[bool] = False

    message: str | list[str]
    level: LogLevel = LogLevel.INFO

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        messages = self.message if isinstance(self.message, list) else [self.message]
        for message in messages:
            ctx.log(self.level.value, ctx.render_text(message))
        return None
