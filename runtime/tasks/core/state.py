"""io.kestra.plugin.core.state: Get, Set, Delete (a JSON document per flow, or namespace)."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from runtime.model._task import Task
from runtime.tasks._api import RunContext, TaskFailedError
from runtime.tasks._registry import task_type


def _flag(ctx: RunContext, value: bool | str) -> bool:
    if isinstance(value, bool):
        return value
    return str(ctx.render(value)).strip().lower() == "true"


class _StateTask(Task, kw_only=True):
    effects_outside: ClassVar[bool] = False

    name: str = "default"
    namespace: bool | str = False
    taskrun_value: bool | str = True

    def key(self, ctx: RunContext) -> str:
        """Where this state document lives: per flow (or namespace), per loop value."""
        name = ctx.render_text(self.name)
        scope = ctx.namespace if _flag(ctx, self.namespace) else f"{ctx.namespace}/{ctx.flow_id}"
        key = f"states/{scope}/{name}"
        if _flag(ctx, self.taskrun_value) and ctx.value is not None:
            key += f"/{ctx.value}"
        return key


@task_type("io.kestra.plugin.core.state.Get", "io.kestra.core.tasks.states.Get", "state.Get")
class StateGet(_StateTask, kw_only=True):
    """Reads the state document ``name``; output ``data`` (empty when missing)."""

    error_on_missing: bool | str = False

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = self.key(ctx)
        data = await ctx.state_store().get(key)
        if data is None:
            if _flag(ctx, self.error_on_missing):
                raise TaskFailedError(f"no state {key!r}")
            return {"count": 0, "data": {}}
        return {"count": len(data), "data": data}


@task_type("io.kestra.plugin.core.state.Set", "io.kestra.core.tasks.states.Set", "state.Set")
class StateSet(_StateTask, kw_only=True):
    """Merges ``data`` into the state document ``name``."""

    data: dict[str, Any] = msgspec.field(default_factory=dict)

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = self.key(ctx)
        store = ctx.state_store()
        current = await store.get(key) or {}
        current.update(ctx.render(self.data))
        await store.put(key, current)
        return {"count": len(current), "key": key}


@task_type(
    "io.kestra.plugin.core.state.Delete", "io.kestra.core.tasks.states.Delete", "state.Delete"
)
class StateDelete(_StateTask, kw_only=True):
    """Deletes the state document ``name``."""

    error_on_missing: bool | str = False

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        key = self.key(ctx)
        deleted = await ctx.state_store().delete(key)
        if not deleted and _flag(ctx, self.error_on_missing):
            raise TaskFailedError(f"no state {key!r} to delete")
        return {"deleted": deleted}
