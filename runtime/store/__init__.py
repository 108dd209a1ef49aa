"""Stores: where executions, their events, logs and metrics live."""

from __future__ import annotations

from pathlib import Path
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
from runtime.store._memory import MemoryStore
from runtime.store._sqlite import SqliteStore

__all__ = (
    "ExecutionQuery",
    "LogEntry",
    "MemoryStore",
    "MetricAggregate",
    "MetricEntry",
    "Page",
    "SqliteStore",
    "Store",
    "StoredFlow",
    "open_store",
)


def open_store(url: str | None, data_dir: Path) -> Store:
    """The store a URL names: ``memory``, ``sqlite:///path/to.db``, or the default
    (``None``): SQLite in ``data_dir/tiercel.db``.

    :raises ValueError: for a URL of an unknown kind.
    """
    if url is None:
        return SqliteStore(data_dir / "tiercel.db")
    if url == "memory":
        return MemoryStore()
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = parsed.path if not parsed.netloc else f"/{parsed.netloc}{parsed.path}"
        return SqliteStore(Path(path.removeprefix("/") if url.startswith("sqlite:///./") else path))
    raise ValueError(f"unknown store {url!r}; expected memory or sqlite:///path (postgresql soon)")
