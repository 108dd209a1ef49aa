"""io.kestra.plugin.core.kv: Get, Set, Delete in the namespace key-value store."""

from __future__ import annotations

from typing import Any

from runtime.model._common import Duration
from runtime.model._task import Task
from runtime.tasks._registry import task_type

_FLOW_NAMESPACE = "{{ flow.namespace }}"


@task_type("io.kestra.plugin.core.kv.Get", "kv.Get")
class KvGet(Task, kw_only=True):
    """Reads ``key``; output ``value`` (null when missing unless ``errorOnMissing``)."""

    key: str
    namespace: str = _FLOW_NAMESPACE
    error_on_missing: bool = False


@task_type("io.kestra.plugin.core.kv.Set", "kv.Set")
class KvSet(Task, kw_only=True):
    """Stores ``value`` under ``key``, for ``ttl`` if given."""

    key: str
    value: Any
    namespace: str = _FLOW_NAMESPACE
    overwrite: bool = True
    ttl: Duration | None = None
    kv_type: str | None = None


@task_type("io.kestra.plugin.core.kv.Delete", "kv.Delete")
class KvDelete(Task, kw_only=True):
    """Deletes ``key``; output ``deleted``."""

    key: str
    namespace: str = _FLOW_NAMESPACE
    error_on_missing: bool = False
