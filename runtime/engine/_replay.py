"""Replay: a new execution that copies an old one up to a chosen task run, then goes on."""

from __future__ import annotations

from datetime import datetime

from runtime.model._events import (
    AttemptEnded,
    AttemptStarted,
    Event,
    ExecutionCreated,
    ExecutionStateChanged,
    MetricEmitted,
    OutputEmitted,
    TaskRunCreated,
    TaskRunStateChanged,
)
from runtime.model._execution import Execution, TaskRun
from runtime.model._states import State


def _kept(execution: Execution, task_run_id: str) -> tuple[list[TaskRun], set[str]]:
    """Task runs created before the chosen one (minus its descendants), and what restarts."""
    by_id = {t.id: t for t in execution.task_run_list}
    if task_run_id not in by_id:
        raise KeyError(task_run_id)
    restart = {task_run_id}
    current = by_id[task_run_id]
    while current.parent_task_run_id is not None:
        restart.add(current.parent_task_run_id)
        current = by_id[current.parent_task_run_id]
    kept: list[TaskRun] = []
    dropped: set[str] = set()
    for task_run in execution.task_run_list:
        if task_run.id == task_run_id:
            kept.append(task_run)
            break
        if task_run.parent_task_run_id in dropped:
            dropped.add(task_run.id)
            continue
        kept.append(task_run)
    return kept, restart


def replay_history(
    execution: Execution, task_run_id: str, new_execution_id: str, now: datetime
) -> list[Event]:
    """The events of a replay of ``execution`` from ``task_run_id``, ready to be folded.

    :raises KeyError: if the execution has no such task run.
    """
    kept, restart = _kept(execution, task_run_id)
    seq = 0
    events: list[Event] = []

    def add(
        kind: type[Event], time: datetime, task_run: str | None = None, **fields: object
    ) -> None:
        nonlocal seq
        seq += 1
        events.append(
            kind(execution_id=new_execution_id, seq=seq, time=time, task_run_id=task_run, **fields)  # type: ignore[arg-type]
        )

    add(
        ExecutionCreated,
        execution.state.histories[0].date,
        namespace=execution.namespace,
        flow_id=execution.flow_id,
        flow_revision=execution.flow_revision,
        inputs=execution.inputs,
        labels=[(label.key, label.value) for label in execution.labels],
        parent_id=execution.id,
        original_id=execution.original_id,
        trigger=execution.trigger,
        metadata=dict(execution.metadata),
    )
    for entry in execution.state.histories[1:]:
        add(ExecutionStateChanged, entry.date, state=entry.state)
    for task_run in kept:
        first = task_run.state.histories[0]
        add(
            TaskRunCreated,
            first.date,
            task_run.id,
            task_id=task_run.task_id,
            parent_task_run_id=task_run.parent_task_run_id,
            value=task_run.value,
            iteration=task_run.iteration,
        )
        for number, attempt in enumerate(task_run.attempts or (), start=1):
            add(AttemptStarted, attempt.state.start_date, task_run.id, attempt=number)
            for metric in attempt.metrics:
                add(
                    MetricEmitted, attempt.state.start_date, task_run.id, attempt=number,
                    name=metric.name, type=metric.type, value=metric.value, tags=metric.tags,
                )  # fmt: skip
            if attempt.state.current.terminal:
                add(AttemptEnded, attempt.state.histories[-1].date, task_run.id, attempt=number,
                    state=attempt.state.current)  # fmt: skip
        for entry in task_run.state.histories[1:]:
            if entry.state is State.RUNNING and task_run.attempts:
                continue  # AttemptStarted already moved it to RUNNING
            add(TaskRunStateChanged, entry.date, task_run.id, state=entry.state)
        if task_run.outputs and task_run.id not in restart:
            add(
                OutputEmitted,
                task_run.state.histories[-1].date,
                task_run.id,
                outputs=task_run.outputs,
            )
        if task_run.id in restart:
            add(TaskRunStateChanged, now, task_run.id, state=State.RESTARTED)
    add(ExecutionStateChanged, now, state=State.RESTARTED)
    return events
