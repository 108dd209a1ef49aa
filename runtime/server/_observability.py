"""``/api/v1/logs`` and ``/api/v1/metrics``: what executions said and measured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from runtime.engine import LogEmitted
from runtime.server._http import ApiError, json_response, query_date, query_int
from runtime.server._sse import SseMessage, SseResponse
from runtime.server._state import ServerState, state_of
from runtime.store import LogEntry
from runtime.store._base import LEVELS, level_at_least

_ENCODER = msgspec.json.Encoder()


async def _exists(state: ServerState, execution_id: str) -> None:
    if await state.runtime.get_execution(execution_id) is None:
        raise ApiError(404, f"no execution {execution_id!r}")


def _min_level(request: Request) -> str | None:
    raw = request.query_params.get("minLevel")
    if not raw:
        return None
    if raw.upper() not in LEVELS:
        raise ApiError(400, f"unknown level {raw!r}; expected one of {', '.join(LEVELS)}")
    return raw.upper()


async def _logs(request: Request) -> list[LogEntry]:
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    await _exists(state, execution_id)
    attempt = query_int(request, "attempt", 0, 0, 1_000_000) or None
    entries = await state.runtime.store.logs(
        execution_id,
        task_run_id=request.query_params.get("taskRunId") or None,
        attempt=attempt,
        min_level=_min_level(request),
    )
    task_id = request.query_params.get("taskId")
    if task_id:
        entries = [e for e in entries if e.task_id == task_id]
    return entries


async def execution_logs(request: Request) -> Response:
    """Log lines of an execution, in order; filter by ``minLevel``, ``taskRunId``,
    ``taskId`` and ``attempt``."""
    return json_response(await _logs(request))


def log_line(entry: LogEntry) -> str:
    """One log line as text: time, level, task, message."""
    where = f" [{entry.task_id}]" if entry.task_id else ""
    return f"{entry.timestamp.isoformat()} {entry.level:<5}{where} {entry.message}\n"


async def download_logs(request: Request) -> Response:
    """The same log lines as a text file."""
    entries = await _logs(request)
    execution_id = request.path_params["executionId"]

    async def lines() -> AsyncIterator[bytes]:
        for entry in entries:
            yield log_line(entry).encode()

    return StreamingResponse(
        lines(),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{execution_id}.log"'},
    )


async def follow_logs(request: Request) -> Response:
    """Log lines as server-sent events (``id`` is the sequence number), until the end."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    await _exists(state, execution_id)
    minimum = _min_level(request)
    task_run_id = request.query_params.get("taskRunId") or None
    task_id = request.query_params.get("taskId") or None
    raw = request.headers.get("last-event-id") or "0"
    after = int(raw) if raw.isdigit() else 0

    async def messages() -> AsyncIterator[SseMessage]:
        async for event in state.runtime.follow(execution_id, after):
            if not isinstance(event, LogEmitted):
                continue
            if not level_at_least(event.level, minimum):
                continue
            if task_run_id is not None and event.task_run_id != task_run_id:
                continue
            if task_id is not None and event.task_id != task_id:
                continue
            entry = LogEntry(
                execution_id=event.execution_id,
                seq=event.seq,
                timestamp=event.time,
                level=event.level,
                message=event.message,
                task_run_id=event.task_run_id,
                task_id=event.task_id,
                attempt_number=event.attempt,
            )
            yield SseMessage(_ENCODER.encode(entry), "log", str(event.seq))

    return SseResponse(messages(), state.closing)  # type: ignore[return-value]


async def execution_metrics(request: Request) -> Response:
    """Metric entries of an execution; filter by ``taskRunId``."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    await _exists(state, execution_id)
    entries = await state.runtime.store.metrics(execution_id)
    task_run_id = request.query_params.get("taskRunId")
    if task_run_id:
        entries = [e for e in entries if e.task_run_id == task_run_id]
    return json_response(entries)


async def metric_aggregate(request: Request) -> Response:
    """Count, sum, average, minimum and maximum of a metric over a flow's executions,
    between ``startDate`` and ``endDate``."""
    state = state_of(request)
    aggregate = await state.runtime.store.metric_aggregate(
        request.path_params["namespace"],
        request.path_params["flowId"],
        request.path_params["metric"],
        query_date(request, "startDate"),
        query_date(request, "endDate"),
    )
    return json_response(aggregate)


def routes() -> list[Route]:
    """The log and metric routes."""
    return [
        Route("/api/v1/logs/{executionId}/download", download_logs, methods=["GET"]),
        Route("/api/v1/logs/{executionId}/follow", follow_logs, methods=["GET"]),
        Route("/api/v1/logs/{executionId}", execution_logs, methods=["GET"]),
        Route(
            "/api/v1/metrics/aggregates/{namespace}/{flowId}/{metric}",
            metric_aggregate,
            methods=["GET"],
        ),
        Route("/api/v1/metrics/{executionId}", execution_metrics, methods=["GET"]),
    ]
