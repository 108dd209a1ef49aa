"""Browser sessions for the web UI: a signed cookie given for a valid token, and the
anti-forgery token that goes with it.

A browser cannot send ``Authorization: Bearer`` on a page load or an EventSource, so the
UI asks for the token once and gets a cookie instead. The cookie is signed with a key
derived from the server's own secrets (its tokens and basic-auth pairs): every API node of
a cluster that shares the token accepts it, a restart keeps it valid, and changing the
token ends every session. It is ``HttpOnly`` and ``SameSite=Strict``; requests that change
something must also carry the page's anti-forgery token in a header (``X-Tiercel-Csrf``),
so another site can never act through a logged-in browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

COOKIE = "tiercel_session"
CSRF_HEADER = "x-tiercel-csrf"
SESSION_SECONDS = 12 * 3600
"""How long a UI session lasts before the token is asked for again."""


class SessionKeys:
    """Signs and checks session cookies with a key derived from the server's secrets."""

    def __init__(self, secrets_: Sequence[bytes]) -> None:
        digest = hashlib.sha256(b"tiercel-ui-session\0")
        for secret in sorted(secrets_):
            digest.update(hashlib.sha256(secret).digest())
        self._key = digest.digest()

    def _mac(self, label: str, value: str) -> str:
        return hmac.new(self._key, f"{label}\0{value}".encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        """A new session cookie value, valid for :data:`SESSION_SECONDS`."""
        expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
        body = f"{expires}.{secrets.token_hex(8)}"
        return f"{body}.{self._mac('session', body)}"

    def valid(self, cookie: str | None, now: float | None = None) -> bool:
        """Whether ``cookie`` was issued by this server (same secrets) and has not expired."""
        if not cookie or cookie.count(".") != 2:
            return False
        body, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return False
        expires = body.partition(".")[0]
        if not expires.isdigit():
            return False
        return int(expires) > (now if now is not None else time.time())

    def csrf_token(self, cookie: str) -> str:
        """The anti-forgery token of a session (pages carry it; changes must send it)."""
        return self._mac("csrf", cookie)[:40]

    def csrf_valid(self, cookie: str, token: str | None) -> bool:
        """Whether ``token`` is the anti-forgery token of the session ``cookie``."""
        return bool(token) and hmac.compare_digest(token or "", self.csrf_token(cookie))


def cookie_of(headers: Sequence[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    """The value of cookie ``name`` in raw ASGI headers, if any."""
    for key, value in headers:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie_name, sep, cookie_value = part.strip().partition("=")
            if sep and cookie_name == name:
                return cookie_value
    return None
