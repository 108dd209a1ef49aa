"""io.kestra.plugin.core.state: Get, Set, Delete (a JSON document per flow, or namespace)."""

from __future__ import annotations

from typing import Any

import msgspec

from runtime.model._task import Task
from runtime.tasks._registry import task_type


class _StateTask(Task, kw_only=True):
    name: str = "default"
    namespace: bool | str = False
    taskrun_value: bool | str = True


@task_type("io.kestra.plugin.core.state.Get", "io.kestra.core.tasks.states.Get", "state.Get")
class StateGet(_StateTask, kw_only=True):
    """Reads the state document ``name``; output ``data`` (empty when missing)."""

    error_on_missing: bool | str = False


@task_type("io.kestra.plugin.core.state.Set", "io.kestra.core.tasks.states.Set", "state.Set")
class StateSet(_StateTask, kw_only=True):
    """Merges ``data`` into the state document ``name``."""

    data: dict[str, Any] = msgspec.field(default_factory=dict)


@task_type(
    "io.kestra.plugin.core.state.Delete", "io.kestra.core.tasks.states.Delete", "state.Delete"
)
class StateDelete(_StateTask, kw_only=True):
    """Deletes the state document ``name``."""

    error_on_missing: bool | str = False
