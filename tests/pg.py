"""PostgreSQL for the tests: where it is, and fresh schemas that are dropped afterwards.

Tests connect to ``TIERCEL_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
When it cannot be reached, a test that needs it fails under ``CI=true`` (CI must really
test the PostgreSQL store) and is skipped elsewhere, saying why.
"""

from __future__ import annotations

import functools
import os
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def base_url() -> str:
    """The database the tests use."""
    return os.environ.get("TIERCEL_TEST_PG_URL") or DEFAULT_URL


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@functools.cache
def _unreachable(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        return f"PostgreSQL at {url} cannot be reached: {reason}"
    return None


def require_postgres() -> str:
    """The database's URL; fails (under CI) or skips the calling test if it is unreachable."""
    url = base_url()
    reason = _unreachable(url)
    if reason is not None:
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
        pytest.skip(f"{reason} (set TIERCEL_TEST_PG_URL; under CI=true this fails)")
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` with its ``schema`` query parameter set to ``schema``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("schema", schema)])))


class Schemas:
    """Fresh schemas in the test database, each with a name no other test process uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.names: list[str] = []

    def new(self) -> str:
        """The URL of a store in a new schema (the store creates it when it opens)."""
        name = f"tiercel_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        return with_schema(self.url, name)

    def drop(self) -> None:
        """Drop every schema handed out."""
        if not self.names:
            return
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute("SET lock_timeout = '10s'")
            for name in self.names:
                connection.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )
        self.names.clear()
