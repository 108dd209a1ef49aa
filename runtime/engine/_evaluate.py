"""Evaluating an expression against an execution, as its tasks would see it (the same
variables, the same sandbox): what the web UI's expression box and the eval API do."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors import Clock
from runtime.engine._hooks import ExecutionHooks
from runtime.engine._variables import OutputsTree, base_variables
from runtime.expressions import ExpressionEngine
from runtime.expressions._engine import has_markers
from runtime.model import Flow
from runtime.model._execution import Execution, TaskRun
from runtime.storage import storage_for

MAX_EXPRESSION_CHARS = 10_000
"""Longest expression accepted for evaluation."""


def value_path(task_run: TaskRun, by_id: Mapping[str, TaskRun]) -> tuple[str, ...]:
    """The loop values on the way from the root to ``task_run`` (outermost first): where
    its outputs sit under ``outputs.<task id>``."""
    values: list[str] = []
    current: TaskRun | None = task_run
    seen: set[str] = set()
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.value is not None:
            values.append(current.value)
        parent = current.parent_task_run_id
        current = by_id.get(parent) if parent else None
    return tuple(reversed(values))


def execution_variables_of(
    flow: Flow,
    execution: Execution,
    envs: Mapping[str, str],
    task_run_id: str | None = None,
) -> dict[str, Any]:
    """The variables expressions see in ``execution`` (in the context of one of its task
    runs when ``task_run_id`` is given: ``taskrun``, ``task``, ``parents``).

    :raises KeyError: if the execution has no task run ``task_run_id``.
    """
    by_id = {t.id: t for t in execution.task_run_list}
    outputs = OutputsTree()
    for task_run in execution.task_run_list:
        if task_run.outputs:
            outputs.put(task_run.task_id, value_path(task_run, by_id), task_run.outputs)
    variables = base_variables(flow, execution, envs, outputs.root)
    if task_run_id is None:
        return variables
    task_run = by_id[task_run_id]
    task = flow.find_task(task_run.task_id)
    variables["task"] = {"id": task_run.task_id, "type": task.type if task else None}
    variables["taskrun"] = {
        "id": task_run.id,
        "startDate": task_run.state.start_date,
        "attemptsCount": max(0, len(task_run.attempts or ()) - 1),
        "parentId": task_run.parent_task_run_id,
        "value": task_run.value,
        "iteration": task_run.iteration,
    }
    parents: list[dict[str, Any]] = []
    parent_id = task_run.parent_task_run_id
    while parent_id and parent_id in by_id:
        parent = by_id[parent_id]
        entry: dict[str, Any] = {}
        if parent.value is not None:
            entry["taskrun"] = {"value": parent.value}
        if parent.outputs:
            entry["outputs"] = parent.outputs
        if entry:
            parents.append(entry)
        parent_id = parent.parent_task_run_id
    variables["parents"] = parents
    if parents:
        variables["parent"] = parents[0]
    return variables


def evaluate_in_execution(
    expressions: ExpressionEngine,
    clock: Clock,
    data_dir: Path,
    flow: Flow,
    execution: Execution,
    expression: str,
    *,
    envs: Mapping[str, str],
    task_run_id: str | None = None,
) -> Any:
    """The value of ``expression`` in ``execution``: a template (``{{ outputs.a.value }}``,
    typed when it is one expression) or a bare expression (``outputs.a.value``).

    :raises ExpressionError: (its subclasses) as rendering a task's property would.
    :raises KeyError: if the execution has no task run ``task_run_id``.
    :raises ValueError: if the expression is longer than :data:`MAX_EXPRESSION_CHARS`.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"the expression is over {MAX_EXPRESSION_CHARS} characters")
    variables = execution_variables_of(flow, execution, envs, task_run_id)
    hooks = ExecutionHooks(storage_for(data_dir), clock, flow.namespace)
    if has_markers(expression):
        return expressions.render_typed(expression, variables, hooks)
    return expressions.evaluate(expression.strip(), variables, hooks)
