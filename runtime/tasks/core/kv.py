"""io.kestra.plugin.core.kv: Get, Set, Delete in the namespace key-value store."""

from __future__ import annotations

from typing import Any, ClassVar

from runtime.model._common import Duration
from runtime.model._task import Task
from runtime.tasks._api import RunContext, TaskFailedError
from runtime.tasks._registry import task_type

_FLOW_NAMESPACE = "{{ flow.namespace }}"


def _key(ctx: RunContext, namespace: str, key: str) -> tuple[str, str]:
    rendered_namespace = ctx.render_text(namespace)
    rendered_key = ctx.render_text(key)
    if not rendered_key:
        raise TaskFailedError("the key must not be empty")
    return rendered_namespace, f"kv/{rendered_namespace}/{rendered_key}"


@task_type("io.kestra.plugin.core.kv.Get", "kv.Get")
class KvGet(Task, kw_only=True):
    """Reads ``key``; output ``value`` (null when missing unless ``errorOnMissing``)."""

    effects_outside: ClassVar[bool] = False

    key: str
    namespace: str = _FLOW_NAMESPACE
    error_on_missing: bool = False

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        namespace, key = _key(ctx, self.namespace, self.key)
        value = await ctx.state_store().get(key)
        if value is None and self.error_on_missing:
            raise TaskFailedError(
                f"no value found for key {ctx.render_text(self.key)!r} in namespace {namespace!r}"
            )
        return {"value": value}


@task_type("io.kestra.plugin.core.kv.Set", "kv.Set")
class KvSet(Task, kw_only=True):
    """Stores ``value`` under ``key``, for ``ttl`` if given."""

    effects_outside: ClassVar[bool] = False

    key: str
    value: Any
    namespace: str = _FLOW_NAMESPACE
    overwrite: bool = True
    ttl: Duration | None = None
    kv_type: str | None = None

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        _, key = _key(ctx, self.namespace, self.key)
        store = ctx.state_store()
        if not self.overwrite and await store.get(key) is not None:
            raise TaskFailedError(
                f"key {ctx.render_text(self.key)!r} exists and overwrite is false"
            )
        ttl = self.ttl.total_seconds() if self.ttl is not None else None
        await store.put(key, ctx.render(self.value), ttl)
        return None


@task_type("io.kestra.plugin.core.kv.Delete", "kv.Delete")
class KvDelete(Task, kw_only=True):
    """Deletes ``key``; output ``deleted``."""

    effects_outside: ClassVar[bool] = False

    key: str
    namespace: str = _FLOW_NAMESPACE
    error_on_missing: bool = False

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        _, key = _key(ctx, self.namespace, self.key)
        deleted = await ctx.state_store().delete(key)
        if not deleted and self.error_on_missing:
            raise TaskFailedError(f"no key {ctx.render_text(self.key)!r} to delete")
        return {"deleted": deleted}
