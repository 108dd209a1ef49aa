"""Logging in to the web UI (the token once, then a session cookie), and its static files."""

from __future__ import annotations

import mimetypes
from importlib import resources
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime.server._guard import Credentials
from runtime.server._http import public
from runtime.server._session import COOKIE, SESSION_SECONDS
from runtime.server.ui._render import render

MAX_LOGIN_FIELD = 4096


def _credentials(request: Request) -> Credentials | None:
    credentials: Credentials | None = getattr(request.app.state, "credentials", None)
    return credentials


def _safe_next(raw: str | None) -> str:
    """Where to go after logging in: a path of this UI only (never another site)."""
    if not raw:
        return "/ui/executions"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in raw:
        return "/ui/executions"
    return raw


@public
async def login_page(request: Request) -> Response:
    """The login form: the API token (or a user and password when basic auth is on)."""
    credentials = _credentials(request)
    target = _safe_next(request.query_params.get("next"))
    if credentials is None:
        return RedirectResponse(target, status_code=303)
    return render(
        request,
        "login.html",
        {"next": target, "basic": credentials.has_basic, "error": None},
    )


@public
async def login(request: Request) -> Response:
    """Check what the form carries; on success set the session cookie and go on."""
    credentials = _credentials(request)
    async with request.form(max_files=0, max_fields=10, max_part_size=MAX_LOGIN_FIELD) as form:
        token = str(form.get("token") or "")[:MAX_LOGIN_FIELD]
        user = str(form.get("user") or "")[:MAX_LOGIN_FIELD]
        password = str(form.get("password") or "")[:MAX_LOGIN_FIELD]
        target = _safe_next(str(form.get("next") or ""))
    if credentials is None:
        return RedirectResponse(target, status_code=303)
    accepted = (token and credentials.accepts_token(token.strip())) or (
        user and credentials.accepts_password(user, password)
    )
    if not accepted:
        return render(
            request,
            "login.html",
            {
                "next": target,
                "basic": credentials.has_basic,
                "error": "That token (or user and password) is not accepted by this server.",
            },
            status=401,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        credentials.sessions.issue(),
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    """End this browser's session."""
    response = Response(status_code=200, headers={"HX-Redirect": "/ui/login"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@public
async def static_file(request: Request) -> Response:
    """A file shipped inside the package (scripts, styles, icons): nothing is fetched
    from the network."""
    name = request.path_params["name"]
    if "/" in name or "\\" in name or name.startswith("."):
        return Response("not found", status_code=404, media_type="text/plain")
    resource = resources.files("runtime.server.ui").joinpath("static").joinpath(name)
    if not resource.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    suffix = "." + name.rpartition(".")[2]
    media_type = _STATIC_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "text/plain"
    return Response(
        resource.read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600"},
    )
