from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import VirtualClock
from runtime.engine import _runtime
from runtime.logging import configure_logging
from runtime.store import PostgresStore, SqliteStore, Store
from tests import pg

configure_logging("warning")

TEST_STORES = ("memory", "sqlite", "postgres")


@pytest.fixture
def anyio_backend() -> str:
    """Tiercel is an asyncio runtime; every async test runs on asyncio."""
    return "asyncio"


REAL_IO_AUTOJUMP_THRESHOLD = 0.02
"""Real seconds of idleness a virtual clock waits for before it jumps, when the store does
real I/O (see below)."""


@pytest.fixture(autouse=True)
def _store_of_every_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``TIERCEL_TEST_STORE`` (memory, sqlite or postgres; memory by default) is the store
    of every Runtime a test makes without a store or a data folder: a fresh one each
    (sqlite: a new file; postgres: a new schema, dropped when the test ends).

    On those stores a ``flush`` waits for a thread or a socket, which an autojumping
    ``VirtualClock`` takes for idleness: it would move time while the engine waits for its
    store (an hour-long Sleep would end before the next ``start`` returned). So virtual
    clocks get an ``autojump_threshold`` unless the test gave one: the knob VirtualClock
    documents for tests that mix virtual time with real I/O.
    """
    kind = os.environ.get("TIERCEL_TEST_STORE") or "memory"
    if kind not in TEST_STORES:
        pytest.fail(f"TIERCEL_TEST_STORE={kind!r}: expected one of {', '.join(TEST_STORES)}")
    if kind == "memory":
        yield
        return
    original = VirtualClock.__init__

    def patient(
        clock: VirtualClock,
        *,
        autojump_threshold: float = REAL_IO_AUTOJUMP_THRESHOLD,
        **options: Any,
    ) -> None:
        original(clock, autojump_threshold=autojump_threshold, **options)

    monkeypatch.setattr(VirtualClock, "__init__", patient)
    with tempfile.TemporaryDirectory(prefix="tiercel-test-store-") as folder:
        factory: Callable[[], Store]
        schemas = None
        if kind == "sqlite":
            numbers = itertools.count()
            factory = lambda: SqliteStore(Path(folder) / f"store-{next(numbers)}.db")  # noqa: E731
        else:
            schemas = pg.Schemas(pg.require_postgres())
            factory = lambda: PostgresStore(schemas.new())  # noqa: E731
        _runtime.default_store_factory = factory
        try:
            yield
        finally:
            _runtime.default_store_factory = None
            if schemas is not None:
                schemas.drop()


@pytest.fixture
def postgres_schemas() -> Iterator[pg.Schemas]:
    """Fresh PostgreSQL schemas for one test (see ``tests/pg.py``), dropped at its end."""
    schemas = pg.Schemas(pg.require_postgres())
    try:
        yield schemas
    finally:
        schemas.drop()


@pytest.fixture
def postgres_url(postgres_schemas: pg.Schemas) -> str:
    """The URL of a PostgreSQL store in a fresh schema."""
    return postgres_schemas.new()
