"""The executions list: filters, pages, live refresh, and kill or restart of several."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response

from runtime.engine import ExecutionError
from runtime.server._errors import api_error_of
from runtime.server._executions import execution_query
from runtime.server._http import ApiError
from runtime.server._state import state_of
from runtime.server.ui._pages import ui_page
from runtime.server.ui._render import render

log = structlog.get_logger("tiercel.ui")

PAGE_SIZE = 25
RANGES = [
    ("", "any time"),
    ("PT1H", "last hour"),
    ("P1D", "last 24 hours"),
    ("P7D", "last 7 days"),
    ("P30D", "last 30 days"),
]
_RANGE_SECONDS = {"PT1H": 3600, "P1D": 86400, "P7D": 7 * 86400, "P30D": 30 * 86400}
MAX_BULK = 500
"""Executions one bulk action acts on at most."""


def _labels(request: Request) -> list[str]:
    """``labels`` filters: repeated parameters, each possibly several ``key:value`` pairs
    separated by spaces or commas (as typed in the filter box)."""
    found: list[str] = []
    for raw in request.query_params.getlist("labels"):
        found += [part for part in raw.replace(",", " ").split() if part]
    return found


def _filters(request: Request) -> dict[str, Any]:
    params = request.query_params
    return {
        "namespace": params.get("namespace", ""),
        "flowId": params.get("flowId", ""),
        "state": params.getlist("state"),
        "labels": _labels(request),
        "startDate": params.get("startDate", ""),
        "endDate": params.get("endDate", ""),
        "range": params.get("range", ""),
        "size": params.get("size", str(PAGE_SIZE)),
    }


def _page_link(filters: dict[str, Any], page: int) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in filters.items():
        values = value if isinstance(value, list) else [value]
        pairs += [(key, v) for v in values if v]
    pairs.append(("page", str(page)))
    return "?" + urlencode(pairs)


async def _table_context(request: Request) -> dict[str, Any]:
    state = state_of(request)
    query = execution_query(request)
    labels: dict[str, str] = {}
    for raw in _labels(request):
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise ApiError(400, f"a label filter must be written key:value, not {raw!r}")
        labels[key] = value
    query = msgspec.structs.replace(query, labels=labels or None)
    window = request.query_params.get("range") or ""
    if window:
        if window not in _RANGE_SECONDS:
            raise ApiError(400, f"unknown time range {window!r}")
        since = datetime.now(UTC) - timedelta(seconds=_RANGE_SECONDS[window])
        if query.started_after is None or query.started_after < since:
            query = msgspec.structs.replace(query, started_after=since)
    page = await state.runtime.store.search(query)
    filters = _filters(request)
    pages = max(1, -(-page.total // query.size))
    return {
        "executions": page.items,
        "total": page.total,
        "page": query.page,
        "pages": pages,
        "previous": _page_link(filters, query.page - 1) if query.page > 1 else None,
        "next": _page_link(filters, query.page + 1) if query.page < pages else None,
        "filters": filters,
    }


@ui_page
async def executions_page(request: Request) -> Response:
    """Every execution, newest first, filtered by namespace, flow, state, labels, dates."""
    try:
        context = await _table_context(request)
        error = None
    except ApiError as exc:  # a bad filter: say so above an empty table
        context = {
            "executions": [],
            "total": 0,
            "page": 1,
            "pages": 1,
            "previous": None,
            "next": None,
            "filters": _filters(request),
        }
        error = exc.message
    return render(
        request,
        "executions.html",
        {**context, "error": error, "nav": "executions", "ranges": RANGES},
    )


@ui_page
async def executions_table(request: Request) -> Response:
    """The table alone (the list refreshes it live)."""
    return render(request, "_executions_table.html", await _table_context(request))


async def bulk_action(request: Request) -> Response:
    """Kill or restart the chosen executions; say what happened to each."""
    state = state_of(request)
    async with request.form(max_files=0, max_fields=MAX_BULK + 10) as form:
        action = str(form.get("action") or "")
        ids = [str(v) for v in form.getlist("ids")][:MAX_BULK]
    if action not in ("kill", "restart"):
        raise ApiError(400, f"unknown bulk action {action!r}; expected kill or restart")
    done: list[str] = []
    refused: list[tuple[str, str]] = []
    for execution_id in ids:
        try:
            if action == "kill":
                await state.runtime.kill(execution_id)
            else:
                await state.runtime.restart(execution_id)
            done.append(execution_id)
        except (ExecutionError, ApiError) as exc:
            error = api_error_of(exc)
            refused.append((execution_id, error.message if error else str(exc)))
    log.info("bulk action", action=action, done=len(done), refused=len(refused))
    return render(
        request,
        "_bulk_result.html",
        {"action": action, "done": done, "refused": refused},
        trigger="executions-changed",
    )
