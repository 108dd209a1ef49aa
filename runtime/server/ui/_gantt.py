"""The Gantt chart of an execution: a row per task run, a bar per attempt, on one time axis."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from runtime.model._execution import Execution, StateInfo, TaskRun
from runtime.server.ui._render import format_duration
from runtime.server.ui._tree import task_run_tree

MAX_ROWS = 2000
"""Rows drawn at most (a huge execution shows its first ones and says how many are left)."""


@dataclass(frozen=True)
class Bar:
    """One attempt (or a flowable task run's whole span) on the axis, in percent."""

    left: float
    width: float
    state: str
    label: str
    title: str


@dataclass(frozen=True)
class Row:
    """One task run."""

    task_run: TaskRun
    depth: int
    state: str
    duration: str
    bars: list[Bar] = field(default_factory=list)


@dataclass(frozen=True)
class Tick:
    """A label on the time axis."""

    left: float
    label: str


@dataclass(frozen=True)
class Gantt:
    """The whole chart."""

    rows: list[Row]
    ticks: list[Tick]
    total: str
    hidden: int


def _span(info: StateInfo, now: datetime) -> tuple[datetime, datetime]:
    end = info.end_date or (info.histories[-1].date if info.current.terminal else now)
    return info.start_date, max(end, info.start_date)


def gantt(execution: Execution, now: datetime) -> Gantt:
    """Lay ``execution`` out on a time axis from its start to its end (or ``now``)."""
    origin, end = _span(execution.state, now)
    for task_run in execution.task_run_list:
        end = max(end, _span(task_run.state, now)[1])
    total = max((end - origin).total_seconds(), 0.001)

    def place(start: datetime, stop: datetime) -> tuple[float, float]:
        left = max(0.0, (start - origin).total_seconds() / total * 100)
        width = max(0.4, (stop - start).total_seconds() / total * 100)
        return round(left, 3), round(min(width, 100 - left) if left < 100 else 0.4, 3)

    rows: list[Row] = []
    ordered = task_run_tree(execution.task_run_list)
    for task_run, depth in ordered[:MAX_ROWS]:
        bars: list[Bar] = []
        for number, attempt in enumerate(task_run.attempts or (), start=1):
            start, stop = _span(attempt.state, now)
            left, width = place(start, stop)
            seconds = (stop - start).total_seconds()
            state = attempt.state.current.value
            bars.append(
                Bar(
                    left,
                    width,
                    state,
                    f"attempt {number}",
                    f"{task_run.task_id} attempt {number}: {state}, {format_duration(seconds)}",
                )
            )
        if not bars:
            start, stop = _span(task_run.state, now)
            left, width = place(start, stop)
            state = task_run.state.current.value
            seconds = (stop - start).total_seconds()
            bars.append(
                Bar(
                    left,
                    width,
                    state,
                    "",
                    f"{task_run.task_id}: {state}, {format_duration(seconds)}",
                )
            )
        start, stop = _span(task_run.state, now)
        rows.append(
            Row(
                task_run,
                depth,
                task_run.state.current.value,
                format_duration((stop - start).total_seconds()),
                bars,
            )
        )
    ticks = [Tick(round(i * 20.0, 3), "+" + format_duration(total * i / 5)) for i in range(6)]
    ticks[0] = Tick(0.0, "0s")
    return Gantt(rows, ticks, format_duration(total), max(0, len(ordered) - MAX_ROWS))
