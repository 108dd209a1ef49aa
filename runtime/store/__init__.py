"""Stores: where executions, their events, logs and metrics live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from runtime.store._base import (
    ExecutionQuery,
    LogEntry,
    MetricAggregate,
    MetricEntry,
    Page,
    Store,
    StoredFlow,
)
from runtime.store._errors import (
    StoreError,
    StoreUnavailableError,
    StoreUrlError,
    StoreWriteError,
)
from runtime.store._memory import MemoryStore
from runtime.store._sqlite import SqliteStore

if TYPE_CHECKING:
    from runtime.store._postgres import PostgresStore

__all__ = (
    "ExecutionQuery",
    "LogEntry",
    "MemoryStore",
    "MetricAggregate",
    "MetricEntry",
    "Page",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoreUrlError",
    "StoreWriteError",
    "StoredFlow",
    "open_store",
)


def __getattr__(name: str) -> Any:
    # psycopg takes ~0.1 s to import: only processes that use PostgreSQL pay for it.
    if name == "PostgresStore":
        from runtime.store._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str | None, data_dir: Path) -> Store:
    """The store a URL names: ``memory``, ``sqlite:///path/to.db``,
    ``postgresql://user@host:port/database[?schema=name]`` (or ``postgres://``), or the
    default (``None``): SQLite in ``data_dir/tiercel.db``.

    :raises ValueError: for a URL of an unknown kind (:class:`StoreUrlError` for a
        PostgreSQL URL that cannot be used).
    """
    if url is None:
        return SqliteStore(data_dir / "tiercel.db")
    if url == "memory":
        return MemoryStore()
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = parsed.path if not parsed.netloc else f"/{parsed.netloc}{parsed.path}"
        return SqliteStore(Path(path.removeprefix("/") if url.startswith("sqlite:///./") else path))
    if parsed.scheme in ("postgresql", "postgres"):
        from runtime.store._postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unknown store {url!r}; expected memory, sqlite:///path or "
        "postgresql://user@host:port/database"
    )
