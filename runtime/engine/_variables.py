"""The variables expressions see (``outputs``, ``taskrun``, ``parents``...), kept up to date
incrementally so that building a task run's context does not grow with the execution."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.engine._node import Node
    from runtime.model import Flow
    from runtime.model._execution import Execution, Label


class OutputsTree:
    """``outputs`` as Kestra shapes it: by task id, then by each loop value on the way."""

    __slots__ = ("root",)

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}

    def put(self, task_id: str, path: tuple[str, ...], outputs: Mapping[str, Any]) -> None:
        """Merge ``outputs`` of a run of ``task_id`` whose loop values are ``path``."""
        if not path:
            current = self.root.get(task_id)
            if isinstance(current, dict):
                current.update(outputs)
            else:
                self.root[task_id] = dict(outputs)
            return
        node = self.root.setdefault(task_id, {})
        for value in path[:-1]:
            node = node.setdefault(value, {})
        leaf = node.get(path[-1])
        if isinstance(leaf, dict):
            leaf.update(outputs)
        else:
            node[path[-1]] = dict(outputs)

    def clear(self) -> None:
        """Forget everything (before a rebuild)."""
        self.root.clear()


def flow_variables(flow: Flow) -> dict[str, Any]:
    """``flow``: id, namespace, revision."""
    return {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision or 1}


def execution_variables(execution: Execution) -> dict[str, Any]:
    """``execution``: id, startDate, originalId, state."""
    return {
        "id": execution.id,
        "startDate": execution.state.start_date,
        "originalId": execution.original_id,
        "state": execution.state.current.value,
    }


def labels_variable(labels: list[Label]) -> dict[str, Any]:
    """``labels`` as expressions see them: ``system.x`` labels nest under ``system``."""
    result: dict[str, Any] = {}
    for label in labels:
        if label.key.startswith("system."):
            result.setdefault("system", {}).setdefault(label.key[len("system.") :], label.value)
        else:
            result.setdefault(label.key, label.value)
    return result


def base_variables(
    flow: Flow, execution: Execution, envs: Mapping[str, str], outputs: dict[str, Any]
) -> dict[str, Any]:
    """What every expression of an execution sees: ``flow``, ``execution``, ``vars``,
    ``labels``, ``envs``, ``outputs``, and ``inputs`` and ``trigger`` when it has them."""
    variables: dict[str, Any] = {
        "flow": flow_variables(flow),
        "execution": execution_variables(execution),
        "vars": flow.variables,
        "labels": labels_variable(execution.labels),
        "envs": dict(envs),
        "outputs": outputs,
    }
    if execution.inputs:
        variables["inputs"] = execution.inputs
    if execution.trigger and execution.trigger.get("variables") is not None:
        variables["trigger"] = execution.trigger["variables"]
    return variables


def parents_variables(node: Node, outputs_of: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """``parents``: the closest parent first, each with its loop value and outputs if any."""
    result: list[dict[str, Any]] = []
    parent = node.parent
    while parent is not None:
        entry: dict[str, Any] = {}
        if parent.value is not None:
            entry["taskrun"] = {"value": parent.value}
        outputs = outputs_of.get(parent.id)
        if outputs:
            entry["outputs"] = outputs
        if entry:
            result.append(entry)
        parent = parent.parent
    return result


def task_run_variables(
    node: Node, start_date: datetime | None, attempts_count: int
) -> dict[str, Any]:
    """``taskrun``: id, startDate, attemptsCount (attempts before this one), parentId, value."""
    return {
        "id": node.id,
        "startDate": start_date,
        "attemptsCount": attempts_count,
        "parentId": node.parent.id if node.parent is not None else None,
        "value": node.value,
        "iteration": node.iteration,
    }
