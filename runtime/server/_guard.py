"""What stands in front of every route: authentication (decided on the matched route, never
on how a path looks) and request body size limits."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.server._http import ApiError, error_response
from runtime.server._session import COOKIE, CSRF_HEADER, SessionKeys, cookie_of

TOKEN_FILE = "api-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Credentials:
    """The secrets a request may carry: bearer tokens and basic-auth pairs."""

    def __init__(self, tokens: Sequence[str], basic: Sequence[str]) -> None:
        self._tokens = [t.encode() for t in tokens]
        self._basic = [b.encode() for b in basic]
        self.sessions = SessionKeys([*self._tokens, *self._basic])
        """Signs the web UI's session cookies (a key derived from these secrets)."""

    @property
    def has_basic(self) -> bool:
        """Whether user:password pairs are accepted (the UI's login form asks for them)."""
        return bool(self._basic)

    def accepts_token(self, token: str) -> bool:
        """Whether ``token`` is one of the bearer tokens."""
        return bool(token) and _any_equal(token.encode(), self._tokens)

    def accepts_password(self, user: str, password: str) -> bool:
        """Whether ``user``/``password`` is one of the basic-auth pairs."""
        return bool(user) and _any_equal(f"{user}:{password}".encode(), self._basic)

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries a known secret."""
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            given = value.encode()
            # compare with every token, always: timing must not tell which one was close
            return _any_equal(given, self._tokens)
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(value, validate=True)
            except ValueError:
                return False
            return _any_equal(given, self._basic)
        return False


def _any_equal(given: bytes, known: Sequence[bytes]) -> bool:
    found = False
    for secret in known:
        found |= hmac.compare_digest(given, secret)
    return found


def load_or_create_token(data_dir: Path) -> tuple[str, Path]:
    """The API token kept in ``data_dir/api-token`` (created, readable by its owner only)."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token, path
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token, path


def _matched_route(routes: Sequence[BaseRoute], scope: Scope) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


class AuthMiddleware:
    """Answers 401 unless the request carries credentials, except on routes whose endpoint
    is marked public (``/health``) or authenticates by its own URL key (webhooks).

    Credentials are an ``Authorization`` header, or the web UI's session cookie; a request
    authenticated by the cookie that changes something must also carry the session's
    anti-forgery token. A web UI page asked for without credentials redirects to the
    login page instead of answering 401.

    The route is found the way the router will find it, on the decoded path; anything that
    matches no route needs credentials too, so probing unknown paths tells nothing.
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute],
        credentials: Credentials | None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.credentials is None:
            await self.app(scope, receive, send)
            return
        route = _matched_route(self.routes, scope)
        endpoint = getattr(route, "endpoint", None)
        if getattr(endpoint, "public", False) or getattr(endpoint, "key_authenticated", False):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if not self.credentials.accepts(authorization):
            cookie = cookie_of(scope.get("headers", []), COOKIE)
            sessions = self.credentials.sessions
            if authorization is None and sessions.valid(cookie):
                assert cookie is not None
                if scope["method"] not in _SAFE_METHODS and not sessions.csrf_valid(
                    cookie, _header(scope, CSRF_HEADER.encode())
                ):
                    error = ApiError(403, "missing or wrong anti-forgery token (reload the page)")
                    await error_response(error)(scope, receive, send)
                    return
                scope.setdefault("state", {})["authenticated"] = True
                scope["state"]["session"] = cookie
                await self.app(scope, receive, send)
                return
            if getattr(endpoint, "ui_page", False) and scope["method"] == "GET":
                await _to_login(scope, send)
                return
            error = ApiError(
                401,
                "authentication required: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="tiercel"'},
            )
            await error_response(error)(scope, receive, send)
            return
        scope.setdefault("state", {})["authenticated"] = True
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _to_login(scope: Scope, send: Send) -> None:
    """Send a browser that has no session to the login page, back here afterwards."""
    target = scope.get("root_path", "") + scope["path"]
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    location = "/ui/login?next=" + quote(target, safe="")
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode()), (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


class _TooLargeError(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses request bodies over a limit with 413: ``max_upload_bytes`` for multipart
    uploads, ``max_body_bytes`` for everything else. Checked on Content-Length first, then
    on the bytes actually received (a chunked body has no length)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = (
            self.max_upload_bytes
            if content_type.startswith("multipart/form-data")
            else self.max_body_bytes
        )
        length = headers.get(b"content-length")
        too_large = ApiError(413, f"the request body is over the {limit}-byte limit")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await error_response(ApiError(400, "invalid Content-Length"))(scope, receive, send)
                return
            if declared > limit:
                await error_response(too_large)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLargeError:
            if not started:
                await error_response(too_large)(scope, receive, send)
