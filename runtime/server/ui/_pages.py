"""What the UI's pages share: errors shown as pages, and loading an execution with its flow."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from runtime.engine import Execution
from runtime.model import Flow
from runtime.server._errors import api_error_of
from runtime.server._http import ApiError
from runtime.server._state import ServerState
from runtime.server.ui._render import is_fragment, render

Endpoint = Callable[[Request], Awaitable[Response]]


def ui_page(endpoint: Endpoint) -> Endpoint:
    """Mark a GET endpoint as a page: without a session it sends the browser to the login
    page, and a known error (404, bad filter...) is shown as a page, not as JSON."""

    @functools.wraps(endpoint)
    async def page(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            error = api_error_of(exc)
            if error is None:
                raise
            template = "_error.html" if is_fragment(request) else "error.html"
            return render(request, template, {"error": error, "nav": ""}, status=error.status)

    page.ui_page = True  # type: ignore[attr-defined]
    return page


async def load_execution(state: ServerState, execution_id: str) -> Execution:
    """The execution, or a 404 page."""
    execution = await state.runtime.get_execution(execution_id)
    if execution is None:
        raise ApiError(404, f"no execution {execution_id!r}")
    return execution


async def flow_of(state: ServerState, execution: Execution) -> Flow | None:
    """The flow revision the execution runs (None if it is gone)."""
    return await state.runtime._flow_for(
        execution.namespace, execution.flow_id, execution.flow_revision
    )
