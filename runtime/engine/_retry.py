"""Retries: which policy applies to a task run, and what the kernel makes of it."""

from __future__ import annotations

import random
from typing import Any

from actors import (
    ConstantBackoff,
    ExponentialBackoff,
    RandomBackoff,
    RestartPolicy,
    RestartType,
)
from runtime.model import ConstantRetry, ExponentialRetry, Flow, Retry, RetryBehavior
from runtime.model._execution import Execution, TaskRun


def backoff_of(retry: Retry) -> ConstantBackoff | ExponentialBackoff | RandomBackoff:
    """The kernel backoff for a Kestra retry type."""
    if isinstance(retry, ConstantRetry):
        return ConstantBackoff(retry.interval.total_seconds())
    if isinstance(retry, ExponentialRetry):
        return ExponentialBackoff(
            retry.interval.total_seconds(),
            retry.delay_factor or 2.0,
            retry.max_interval.total_seconds(),
        )
    return RandomBackoff(retry.min_interval.total_seconds(), retry.max_interval.total_seconds())


_NO_RESTART = RestartPolicy(RestartType.TEMPORARY)


def retry_policy(
    retry: Retry | None, attempts_done: int = 0, elapsed: float = 0.0
) -> RestartPolicy:
    """The kernel restart policy for a Kestra retry (none, or a new execution: no restart).

    ``attempts_done`` and ``elapsed`` account for attempts made before this actor started
    (a restart, or a recovery after the process died), so limits hold across them.
    """
    if retry is None or retry.behavior is RetryBehavior.CREATE_NEW_EXECUTION:
        return _NO_RESTART
    limit = retry.attempts_limit
    if limit is not None:
        limit = max(1, limit - attempts_done)
    duration = retry.max_duration.total_seconds() if retry.max_duration is not None else None
    if duration is not None:
        duration = max(0.0, duration - elapsed)
    return RestartPolicy(RestartType.TRANSIENT, backoff_of(retry), limit, duration)


def next_delay(
    retry: Retry, attempts_made: int, elapsed: float, rng: random.Random
) -> float | None:
    """Seconds before attempt ``attempts_made + 1``, or None when the policy is spent."""
    limit = retry.attempts_limit
    if limit is not None and attempts_made >= limit:
        return None
    delay = backoff_of(retry).delay(attempts_made, rng)
    if retry.max_duration is not None and elapsed + delay >= retry.max_duration.total_seconds():
        return None
    return delay


def retry_for_task_run(flow: Flow, execution: Execution, task_run: TaskRun) -> Retry | None:
    """The task's retry, else the nearest flowable parent's, else the flow's."""
    by_id: dict[str, Any] = {t.id: t for t in execution.task_run_list}
    current: TaskRun | None = task_run
    while current is not None:
        task = flow.find_task(current.task_id)
        if task is not None and task.retry is not None:
            return task.retry
        current = by_id.get(current.parent_task_run_id or "")
    return flow.retry
