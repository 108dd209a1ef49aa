"""io.kestra.plugin.core.log: Log."""

from __future__ import annotations

from runtime.model._task import LogLevel, Task
from runtime.tasks._registry import task_type


@task_type("io.kestra.plugin.core.log.Log", "io.kestra.core.tasks.log.Log", "Log")
class Log(Task, kw_only=True):
    """Logs ``message`` (a string, or a list of strings logged one by one) at ``level``."""

    message: str | list[str]
    level: LogLevel = LogLevel.INFO
