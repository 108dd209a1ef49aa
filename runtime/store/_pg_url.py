"""The URL of a PostgreSQL store: ``postgresql://user[:password]@host[:port]/database``
(or ``postgres://``), with Tiercel's own query parameters ``schema``, ``pool_min_size`` and
``pool_max_size``; every other parameter goes to libpq."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from runtime.store._errors import StoreUrlError

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,62}")
_OWN_PARAMETERS = ("schema", "pool_min_size", "pool_max_size")


@dataclass(frozen=True)
class PostgresTarget:
    """Where a PostgreSQL store connects, parsed from its URL."""

    conninfo: str
    """The URL without Tiercel's own parameters, for libpq."""
    schema: str
    min_size: int
    max_size: int
    where: str
    """``host:port/database``, for messages."""
    display: str
    """The URL with its password hidden, for messages."""


def parse_postgres_url(url: str) -> PostgresTarget:
    """Parse and check a ``postgresql://`` URL (see the module's docstring).

    :raises StoreUrlError: naming the URL and what is wrong with it.
    """
    parts = urlsplit(url)
    display = _hide_password(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreUrlError(
            f"{display}: not a PostgreSQL URL (expected postgresql://user@host:port/database)"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {key: value for key, value in query if key in _OWN_PARAMETERS}
    schema = own.get("schema", "public")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise StoreUrlError(
            f"{display}: schema {schema!r} is not a valid name (letters, digits, '_' and '-', "
            "at most 63, starting with a letter or '_')"
        )
    min_size = _pool_size(display, own, "pool_min_size", 1)
    max_size = _pool_size(display, own, "pool_max_size", max(4, min_size))
    if min_size > max_size:
        raise StoreUrlError(f"{display}: pool_min_size ({min_size}) exceeds pool_max_size")
    rest = [(key, value) for key, value in query if key not in _OWN_PARAMETERS]
    conninfo = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise StoreUrlError(f"{display}: {str(exc).strip()}") from None
    port = str(params.get("port") or "5432")
    for number in port.split(","):
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise StoreUrlError(f"{display}: port {number!r} is not a port number")
    host = str(params.get("host") or "localhost")
    database = str(params.get("dbname") or params.get("user") or "")
    where = f"{host}:{port}/{database}"
    return PostgresTarget(conninfo, schema, min_size, max_size, where, display)


def _pool_size(display: str, own: dict[str, str], name: str, default: int) -> int:
    text = own.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise StoreUrlError(f"{display}: {name} must be a whole number of at least 1")
    return int(text)


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))
