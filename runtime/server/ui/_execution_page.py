"""The Execution page: overview, Gantt, topology, logs, outputs and metrics, live."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from runtime.engine import AnyEvent, Execution, State, TaskRun
from runtime.model import Flow
from runtime.model._common import enc_hook
from runtime.model._states import RESTARTABLE
from runtime.server._executions import _execution_file, evaluation
from runtime.server._http import ApiError
from runtime.server._state import ServerState, state_of
from runtime.server.ui._forms import Field, fields_of
from runtime.server.ui._gantt import gantt
from runtime.server.ui._outputs import OutputNode, output_tree, preview_file
from runtime.server.ui._pages import flow_of, load_execution, ui_page
from runtime.server.ui._render import ACTIVE_STATES, is_fragment, render
from runtime.server.ui._topology import topology
from runtime.server.ui._tree import loop_values, task_run_tree
from runtime.store._base import LEVELS
from runtime.tasks.core.flow import Pause

EVENT_NAMES = [kind.__name__ for kind in get_args(AnyEvent)]
"""The ``event:`` names of the follow stream (the page listens to each)."""
TABS = ("overview", "gantt", "topology", "logs", "outputs", "metrics")
MAX_LOG_LINES = 5000
"""Log lines a page shows at once (the download has them all)."""
MAX_REPLAY_CHOICES = 1000
"""Task runs offered in the "replay from" list (the API replays from any)."""
OUTPUTS_PER_PAGE = 200
"""Task runs whose outputs one page of the Outputs tab shows."""


@dataclass(frozen=True)
class PausedTask:
    """A Pause task run waiting to be resumed, with the form its ``onResume`` asks for."""

    task_run: TaskRun
    fields: list[Field]


@dataclass(frozen=True)
class HistoryStep:
    """A state the execution went through, when, and for how long."""

    state: str
    date: datetime
    seconds: float | None


def _history(execution: Execution, now: datetime) -> list[HistoryStep]:
    steps = execution.state.histories
    result = []
    for index, entry in enumerate(steps):
        following = steps[index + 1].date if index + 1 < len(steps) else None
        if following is None and not entry.state.terminal:
            following = now
        seconds = (following - entry.date).total_seconds() if following else None
        result.append(HistoryStep(entry.state.value, entry.date, seconds))
    return result


def _paused_tasks(flow: Flow | None, execution: Execution) -> list[PausedTask]:
    if flow is None or execution.state.current is not State.PAUSED:
        return []
    found = []
    for task_run in execution.task_run_list:
        if task_run.state.current is not State.PAUSED:
            continue
        task = flow.find_task(task_run.task_id)
        inputs = task.on_resume if isinstance(task, Pause) else []
        found.append(PausedTask(task_run, fields_of(inputs)))
    return found


def _children(execution: Execution) -> list[tuple[str, str]]:
    """Subflow executions started by this one: (task id, execution id)."""
    return [
        (t.task_id, str(t.outputs["executionId"]))
        for t in execution.task_run_list
        if t.outputs and isinstance(t.outputs.get("executionId"), str)
    ]


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value, enc_hook=enc_hook)


async def _context(request: Request, tab: str) -> dict[str, Any]:
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    execution = await load_execution(state, execution_id)
    await state.runtime.lookup(execution_id)
    flow = await flow_of(state, execution)
    now = datetime.now(UTC)
    by_id = {t.id: t for t in execution.task_run_list}
    task_runs = task_run_tree(execution.task_run_list)
    context: dict[str, Any] = {
        "execution": execution,
        "flow": flow,
        "tab": tab,
        "tabs": TABS,
        "nav": "executions",
        "seq": state.runtime.last_seq(execution_id),
        "active": execution.state.current in ACTIVE_STATES,
        "paused": _paused_tasks(flow, execution),
        "restartable": execution.state.current in RESTARTABLE,
        "task_runs": task_runs,
        "replay_choices": task_runs[:MAX_REPLAY_CHOICES],
        "loop_values": lambda t: loop_values(t, by_id),
        "event_names": EVENT_NAMES,
    }
    if tab == "overview":
        context["history"] = _history(execution, now)
        context["children"] = _children(execution)
        context["inputs"] = output_tree("inputs", _plain(execution.inputs)).children
        context["outputs"] = output_tree("outputs", _plain(execution.outputs or {})).children
    elif tab == "gantt":
        context["gantt"] = gantt(execution, now)
    elif tab == "topology":
        context["topology"] = topology(flow, execution) if flow is not None else None
    elif tab == "logs":
        context.update(await _logs_context(request, state, execution))
    elif tab == "outputs":
        with_outputs = [t for t, _ in task_runs if t.outputs]
        pages = max(1, -(-len(with_outputs) // OUTPUTS_PER_PAGE))
        page = min(max(1, _int_param(request, "page", 1)), pages)
        chosen = with_outputs[(page - 1) * OUTPUTS_PER_PAGE : page * OUTPUTS_PER_PAGE]
        trees: list[tuple[TaskRun, list[OutputNode]]] = [
            (t, output_tree("", _plain(t.outputs)).children) for t in chosen
        ]
        context["output_trees"] = trees
        context["outputs_page"] = (page, pages, len(with_outputs))
    elif tab == "metrics":
        context["metric_rows"] = [
            (task_run, number, metric)
            for task_run, _ in context["task_runs"]
            for number, attempt in enumerate(task_run.attempts or (), start=1)
            for metric in attempt.metrics
        ]
    return context


async def _logs_context(
    request: Request, state: ServerState, execution: Execution
) -> dict[str, Any]:
    level = (request.query_params.get("level") or "INFO").upper()
    if level not in LEVELS:
        raise ApiError(400, f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    task_id = request.query_params.get("taskId") or None
    entries = await state.runtime.store.logs(execution.id, min_level=level)
    if task_id:
        entries = [e for e in entries if e.task_id == task_id]
    hidden = max(0, len(entries) - MAX_LOG_LINES)
    task_ids = sorted({t.task_id for t in execution.task_run_list})
    return {
        "logs": entries[hidden:],
        "hidden_logs": hidden,
        "level": level,
        "levels": LEVELS,
        "task_id": task_id or "",
        "task_ids": task_ids,
    }


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name) or ""
    return int(raw) if raw.isdigit() else default


def _tab_of(request: Request) -> str:
    tab = request.path_params.get("tab", "overview")
    if tab not in TABS:
        raise ApiError(404, f"no tab {tab!r}; the tabs are {', '.join(TABS)}")
    return str(tab)


@ui_page
async def execution_page(request: Request) -> Response:
    """The page of one execution, on one of its tabs (the tab alone for a live refresh)."""
    tab = _tab_of(request)
    context = await _context(request, tab)
    if is_fragment(request):
        return render(request, "_execution_live.html", context)
    return render(request, "execution.html", context)


@ui_page
async def file_preview(request: Request) -> Response:
    """The first lines of a file of the execution (text, JSON, CSV as a table)."""
    state = state_of(request)
    execution = await load_execution(state, request.path_params["executionId"])
    uri = request.query_params.get("path") or ""
    path = _execution_file(state, execution, uri)
    preview = await anyio.to_thread.run_sync(preview_file, path)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return render(
        request,
        "_file_preview.html",
        {"preview": preview, "media_type": media_type},
    )


async def evaluate(request: Request) -> Response:
    """The value of an expression in this execution (the expression box of Outputs)."""
    state = state_of(request)
    execution = await load_execution(state, request.path_params["executionId"])
    async with request.form(max_files=0, max_fields=5) as form:
        expression = str(form.get("expression") or "")
        task_run_id = str(form.get("taskRunId") or "") or None
    found = await evaluation(state, execution, expression, task_run_id)
    return render(
        request,
        "_eval_result.html",
        {"result": _plain(found.result), "error": found.error},
    )
