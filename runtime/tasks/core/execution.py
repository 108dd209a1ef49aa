"""io.kestra.plugin.core.execution: Fail, Labels, Resume."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from runtime.expressions import is_truthy
from runtime.model._common import as_text as _text
from runtime.model._task import Task
from runtime.tasks._api import RunContext, TaskFailedError
from runtime.tasks._registry import task_type


@task_type("io.kestra.plugin.core.execution.Fail", "io.kestra.core.tasks.executions.Fail", "Fail")
class Fail(Task, kw_only=True):
    """Fails with ``errorMessage``, or only when ``condition`` renders truthy."""

    effects_outside: ClassVar[bool] = False

    condition: str | bool | None = None
    error_message: str = "Task failure"

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        if self.condition is not None:
            rendered = (
                ctx.render(self.condition) if isinstance(self.condition, str) else self.condition
            )
            if not is_truthy(_text(rendered)):
                return None
        raise TaskFailedError(ctx.render_text(self.error_message))


@task_type(
    "io.kestra.plugin.core.execution.Labels", "io.kestra.core.tasks.executions.Labels", "Labels"
)
class Labels(Task, kw_only=True):
    """Adds or overrides labels of the current execution.

    ``labels`` is a map, a list of ``{key, value}``, or an expression rendering to a JSON map.
    """

    effects_outside: ClassVar[bool] = False

    labels: dict[str, Any] | list[dict[str, Any]] | str

    def problems(self) -> list[tuple[str, str]]:
        if isinstance(self.labels, list):
            for index, entry in enumerate(self.labels):
                if set(entry) != {"key", "value"}:
                    return [(f"labels[{index}]", "each label must have exactly key and value")]
        return []

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        rendered = ctx.render(self.labels)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except json.JSONDecodeError as exc:
                raise TaskFailedError(f"labels must render to a JSON map: {exc.msg}") from None
        if isinstance(rendered, list):
            labels = {str(item["key"]): _text(item["value"]) or "" for item in rendered}
        elif isinstance(rendered, dict):
            labels = {str(key): _text(value) or "" for key, value in rendered.items()}
        else:
            raise TaskFailedError(
                f"labels must be a map or a list, found {type(rendered).__name__}"
            )
        if any(key.startswith("system.") for key in labels):
            raise TaskFailedError("labels starting with 'system.' cannot be set by a task")
        ctx.set_labels(labels)
        return None


@task_type("io.kestra.plugin.core.execution.Resume", "Resume")
class Resume(Task, kw_only=True):
    """Resumes a paused execution (the current one's parent chain by default)."""

    effects_outside: ClassVar[bool] = False

    namespace: str | None = None
    flow_id: str | None = None
    execution_id: str | None = None
    inputs: dict[str, Any] | None = None

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        target = ctx.render_text(self.execution_id) if self.execution_id else None
        if target is None:
            raise TaskFailedError("executionId is required to resume an execution")
        await ctx.resume_execution(target, ctx.render(self.inputs or {}))
        return None
