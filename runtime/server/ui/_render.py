"""HTML rendering for the web UI: the template environment, its filters, and responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from runtime._version import __version__
from runtime.model._states import TERMINAL, State
from runtime.server._session import CSRF_HEADER
from runtime.server._state import state_of

ACTIVE_STATES = frozenset(State) - TERMINAL
"""States in which something may still happen (the page keeps following)."""


def format_duration(seconds: float | None) -> str:
    """``1h 2m``, ``3m 4s``, ``5.2s``, ``120ms``: short and readable."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_date(value: datetime | None) -> str:
    """A date as UTC text with milliseconds (``2026-12-04 15:26:21.123``)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON (dates and other objects as text)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def short_id(value: str | None) -> str:
    """The first 8 characters of an id (the full id stays in titles and links)."""
    return (value or "")[:8]


def state_value(state: State | str) -> str:
    """A state's name, whether given as the enum or as text."""
    return state.value if isinstance(state, State) else str(state)


@cache
def environment() -> jinja2.Environment:
    """The template environment (templates ship inside the package)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("runtime.server.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = format_duration
    env.filters["date"] = format_date
    env.filters["pretty_json"] = pretty_json
    env.filters["short_id"] = short_id
    env.filters["state"] = state_value
    env.globals["version"] = __version__
    env.globals["states"] = [s.value for s in State]
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    trigger: str | None = None,
) -> HTMLResponse:
    """``template`` rendered with ``context`` and what every page needs (the session's
    anti-forgery token, whether login is on); ``trigger`` names an event the page fires
    when this arrives (htmx's ``HX-Trigger``)."""
    state = state_of(request)
    session = request.scope.get("state", {}).get("session")
    credentials = getattr(request.app.state, "credentials", None)
    csrf = credentials.sessions.csrf_token(session) if credentials and session else ""
    full = {
        "request": request,
        "csrf_header": CSRF_HEADER,
        "csrf_token": csrf,
        "logged_in": session is not None,
        "closing": state.closing.is_set(),
        "now": datetime.now(UTC),
        "nav": "",
        **context,
    }
    html = environment().get_template(template).render(full)
    headers = {"Cache-Control": "no-store"}
    if trigger:
        headers["HX-Trigger"] = trigger
    return HTMLResponse(html, status_code=status, headers=headers)


def is_fragment(request: Request) -> bool:
    """Whether the page asked for a part of itself (htmx), not a whole page."""
    return request.headers.get("hx-request") == "true" and "hx-boosted" not in request.headers
