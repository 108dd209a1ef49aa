"""HTTP plumbing shared by the routes: JSON responses, typed errors, query parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import Problem
from runtime.model._common import enc_hook

_ENCODER = msgspec.json.Encoder(enc_hook=enc_hook)

F = TypeVar("F", bound=Callable[..., Any])


class ApiError(Exception):
    """An error answered as JSON: ``{"message", "status", "errors": [...]}``."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)
        self.headers = headers


class ErrorItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One problem of a request: where it is (path, line, column) and what is wrong."""

    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None


class ErrorBody(msgspec.Struct, kw_only=True):
    """What every error response holds."""

    message: str
    status: int
    errors: list[ErrorItem] = msgspec.field(default_factory=list)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` (msgspec structs, dicts, lists) encoded as JSON."""
    return Response(
        _ENCODER.encode(data), status_code=status, media_type="application/json", headers=headers
    )


def raw_json_response(body: bytes, status: int = 200) -> Response:
    """Already encoded JSON."""
    return Response(body, status_code=status, media_type="application/json")


def error_response(error: ApiError) -> Response:
    """The JSON answer to an :class:`ApiError`."""
    body = ErrorBody(
        message=error.message,
        status=error.status,
        errors=[
            ErrorItem(message=p.message, path=p.path, line=p.line, column=p.column)
            for p in error.problems
        ],
    )
    return json_response(body, error.status, error.headers)


def public(endpoint: F) -> F:
    """Mark an endpoint as answering without credentials (checked on the matched route)."""
    endpoint.public = True  # type: ignore[attr-defined]
    return endpoint


def key_authenticated(endpoint: F) -> F:
    """Mark an endpoint whose URL carries its own secret (a webhook key); it checks it."""
    endpoint.key_authenticated = True  # type: ignore[attr-defined]
    return endpoint


# -- query parameters ------------------------------------------------------------------


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name!r} must be between {low} and {high}")
    return value


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter (true/false, 1/0)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false, not {raw!r}")


def query_date(request: Request, name: str) -> datetime | None:
    """An ISO-8601 date query parameter (UTC when it has no offset)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, f"query parameter {name!r} must be an ISO-8601 date, not {raw!r}"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def query_labels(request: Request) -> dict[str, str] | None:
    """``labels=key:value`` query parameters (repeatable), as Kestra writes them."""
    labels: dict[str, str] = {}
    for raw in request.query_params.getlist("labels"):
        key, sep, value = raw.partition(":")
        if not sep or not key:
            raise ApiError(400, f"a label must be written key:value, not {raw!r}")
        labels[key] = value
    return labels or None


def required_query(request: Request, name: str) -> str:
    """A query parameter that must be there."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        raise ApiError(400, f"query parameter {name!r} is required")
    return raw


async def read_json(request: Request) -> Any:
    """The request body as JSON (an empty body is None)."""
    body = await request.body()
    if not body.strip():
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None


async def read_text(request: Request) -> str:
    """The request body as UTF-8 text."""
    body = await request.body()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8 text") from None
