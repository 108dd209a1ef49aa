"""Every failure becomes structured JSON with the right status, never a stack trace."""

from __future__ import annotations

import secrets

import structlog
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.engine import ExecutionError, ExecutionNotFoundError
from runtime.errors import FlowValidationError, InputValidationError, Problem
from runtime.expressions import ExpressionError
from runtime.server._http import ApiError, error_response
from runtime.storage import StorageError

log = structlog.get_logger("tiercel.server")


def api_error_of(exc: BaseException) -> ApiError | None:
    """The HTTP meaning of one of Tiercel's errors, or None for a bug."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ExecutionNotFoundError):
        return ApiError(404, str(exc).strip("'\""))
    if isinstance(exc, FlowValidationError):
        return ApiError(422, "the flow is invalid", exc.problems)
    if isinstance(exc, InputValidationError):
        return ApiError(422, "the inputs are invalid", exc.problems)
    if isinstance(exc, ExecutionError):
        return ApiError(409, str(exc))
    if isinstance(exc, StorageError):
        return ApiError(400, str(exc))
    if isinstance(exc, ExpressionError):
        return ApiError(422, str(exc), [Problem(message=str(exc))])
    if isinstance(exc, MultiPartException):
        return ApiError(400, f"invalid multipart body: {exc.message}")
    return None


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route: 404, wrong method: 405) as JSON too."""
    assert isinstance(exc, HTTPException)
    messages = {404: "no such resource", 405: "method not allowed for this resource"}
    message = messages.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers) if exc.headers else None
    return error_response(ApiError(exc.status_code, message, headers=headers))


class ErrorMiddleware:
    """Turns exceptions into JSON answers; a bug is logged with an id the answer repeats."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            return
        except Exception as exc:
            error = api_error_of(exc)
            if error is None:
                incident = secrets.token_hex(6)
                log.exception(
                    "request failed", incident=incident, method=scope["method"], path=scope["path"]
                )
                error = ApiError(500, f"internal error (incident {incident}); see the server log")
            if started:
                return  # a stream was cut: nothing more can be said to the client
            await error_response(error)(scope, receive, send)
