"""How each flowable task type builds the controller that runs its children."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from runtime.engine._controller import Child, Controller
from runtime.engine._plans import DagPlan, GroupPlan, Plan, SequentialPlan
from runtime.engine._workdir import WorkingDirectoryController
from runtime.errors import TiercelError
from runtime.expressions import is_truthy
from runtime.model import Task
from runtime.model._common import as_text as _text
from runtime.tasks.core.flow import (
    AllowFailure,
    Dag,
    EachParallel,
    EachSequential,
    FlowableTask,
    ForEach,
    If,
    Parallel,
    Pause,
    Sequential,
    Switch,
    WaitFor,
    WorkingDirectory,
)


class FlowableError(TiercelError):
    """A flowable task cannot decide its children (bad values, no matching case...)."""


Render = Callable[[Any], Any]
"""Renders a property value with the task run's variables."""
RenderTyped = Callable[[str], Any]


def sequential(tasks: list[Task], errors: list[Task], finally_: list[Task]) -> Controller:
    """The tasks one after the other."""
    plan: Plan[Child] = SequentialPlan([Child(task) for task in tasks])
    return Controller(plan, errors, finally_)


def loop_values(raw: Any, render: Render, render_typed: RenderTyped) -> list[str]:
    """A loop's values as Kestra computes them: rendered, JSON for non-text, distinct.

    :raises FlowableError: on null values or something that is not a list.
    """
    if isinstance(raw, str):
        typed = render_typed(raw)
        if isinstance(typed, str):
            try:
                typed = json.loads(typed)
            except json.JSONDecodeError as exc:
                raise FlowableError(f"values {typed!r} are not a JSON list: {exc.msg}") from None
        values = typed
    elif isinstance(raw, list):
        values = [render(item) if isinstance(item, str | dict) else item for item in raw]
    else:
        raise FlowableError(f"values must be a list or an expression, found {type(raw).__name__}")
    if not isinstance(values, list):
        raise FlowableError(f"values must be a list, found {type(values).__name__} {values!r}")
    nulls = sum(1 for value in values if value is None)
    if nulls:
        raise FlowableError(f"Found '{nulls}' null values on Each, with values={_java(values)}")
    result: list[str] = []
    seen: set[str] = set()
    for value in values:
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        if text not in seen:
            seen.add(text)
            result.append(text)
    return result


def build_controller(task: FlowableTask, render: Render, render_typed: RenderTyped) -> Controller:
    """The controller for ``task``'s children.

    :raises FlowableError: when the task cannot decide (rendering errors propagate as they are).
    """
    errors, finally_ = task.errors, task.finally_
    if isinstance(task, Parallel):
        groups = [[Child(t)] for t in task.tasks]
        return Controller(GroupPlan(groups, task.concurrent), errors, finally_)
    if isinstance(task, ForEach | EachSequential):
        values = loop_values(
            task.values if isinstance(task, ForEach) else task.value, render, render_typed
        )
        per_value = [[Child(t, value) for t in task.tasks] for value in values]
        if isinstance(task, ForEach):
            plan: Plan[Child] = GroupPlan(per_value, task.concurrency_limit)
        elif isinstance(task, EachParallel):
            plan = GroupPlan([[child] for group in per_value for child in group], task.concurrent)
        else:
            plan = SequentialPlan([child for group in per_value for child in group])
        return Controller(plan, errors, finally_)
    if isinstance(task, If):
        condition = task.condition
        rendered = render(condition) if isinstance(condition, str) else condition
        truthy = is_truthy(_text(rendered))
        return sequential(task.then if truthy else task.else_, errors, finally_)
    if isinstance(task, Switch):
        value = _text(render(task.value)) or ""
        branch = task.cases.get(value)
        if branch is None:
            if not task.defaults:
                raise FlowableError(
                    f"no case matches value {value!r} and there are no defaults "
                    f"(cases: {', '.join(task.cases) or 'none'})"
                )
            branch = task.defaults
        return sequential(branch, errors, finally_)
    if isinstance(task, Dag):
        ids = {entry.task.id: index for index, entry in enumerate(task.tasks)}
        depends = [[ids[d] for d in entry.depends_on or ()] for entry in task.tasks]
        dag_plan = DagPlan([Child(entry.task) for entry in task.tasks], depends, task.concurrent)
        return Controller(dag_plan, errors, finally_)
    if isinstance(task, WorkingDirectory):
        return WorkingDirectoryController(
            SequentialPlan([Child(t) for t in task.tasks]), errors, finally_
        )
    if isinstance(task, Sequential | AllowFailure | WaitFor | Pause):
        return sequential(task.tasks, errors, finally_)
    raise FlowableError(f"no controller for flowable task type {type(task).__name__}")


def switch_outputs(task: Switch, render: Render) -> dict[str, Any]:
    """The outputs Kestra gives a Switch: the rendered value and whether defaults ran."""
    value = _text(render(task.value))
    return {"value": value, "defaults": value not in task.cases}


def if_truthy(task: If, render: Render) -> bool:
    """Whether an If's condition holds."""
    condition = task.condition
    rendered = render(condition) if isinstance(condition, str) else condition
    return is_truthy(_text(rendered))


def _java(value: Any) -> str:
    """How Java prints a value (the wording Kestra's messages use)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    return str(value)
