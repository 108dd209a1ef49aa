"""io.kestra.plugin.core.execution: Fail, Labels, Resume."""

from __future__ import annotations

from typing import Any

from runtime.model._task import Task
from runtime.tasks._registry import task_type


@task_type("io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail", "Fail")
class Fail(Task, kw_only=True):
    """Fails with ``errorMessage``, or only when ``condition`` renders truthy."""

    condition: str | bool | None = None
    error_message: str = "Task failure"


@task_type(
    "io.kestra.plugin.core.execution.Labels", "io.kestra.core.tasks.executions.Labels", "Labels"
)
class Labels(Task, kw_only=True):
    """Adds or overrides labels of the current execution.

    ``labels`` is a map, a list of ``{key, value}``, or an expression rendering to a JSON map.
    """

    labels: dict[str, Any] | list[dict[str, Any]] | str

    def problems(self) -> list[tuple[str, str]]:
        if isinstance(self.labels, list):
            for index, entry in enumerate(self.labels):
                if set(entry) != {"key", "value"}:
                    return [(f"labels[{index}]", "each label must have exactly key and value")]
        return []


@task_type("io.kestra.plugin.core.execution.Resume", "Resume")
class Resume(Task, kw_only=True):
    """Resumes a paused execution (the current one's parent chain by default)."""

    namespace: str | None = None
    flow_id: str | None = None
    execution_id: str | None = None
    inputs: dict[str, Any] | None = None
