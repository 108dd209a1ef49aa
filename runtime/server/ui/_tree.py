"""Task runs in tree order (each parent followed by its children), with their depth."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from runtime.engine._evaluate import value_path
from runtime.model._execution import TaskRun


def task_run_tree(task_runs: Sequence[TaskRun]) -> list[tuple[TaskRun, int]]:
    """Every task run once, parents before children, siblings in creation order.

    A task run whose parent is missing (removed by a restart) is shown at the top level.
    """
    known = {t.id for t in task_runs}
    children: dict[str | None, list[TaskRun]] = defaultdict(list)
    for task_run in task_runs:
        parent = task_run.parent_task_run_id if task_run.parent_task_run_id in known else None
        children[parent].append(task_run)
    ordered: list[tuple[TaskRun, int]] = []
    stack: list[tuple[TaskRun, int]] = [(t, 0) for t in reversed(children[None])]
    while stack:
        task_run, depth = stack.pop()
        ordered.append((task_run, depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(task_run.id, [])))
    return ordered


def loop_values(task_run: TaskRun, by_id: dict[str, TaskRun]) -> list[str]:
    """The loop values on the way from the root to ``task_run`` (outermost first)."""
    return list(value_path(task_run, by_id))
