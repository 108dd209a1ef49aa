"""The runtime services expression functions need (``read``, ``fileURI``, ``errorLogs``,
``now``), for one execution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from actors import Clock
from runtime.storage import LocalStorage


class ExecutionHooks:
    """Hooks of one execution; ``error_logs`` is kept up to date by the ExecutionActor."""

    __slots__ = ("clock", "errors", "namespace", "storage")

    def __init__(self, storage: LocalStorage, clock: Clock, namespace: str) -> None:
        self.storage = storage
        self.clock = clock
        self.namespace = namespace
        self.errors: list[dict[str, Any]] = []

    def read(self, uri: str) -> str:
        """Text of a file in internal storage."""
        return self.storage.read_text(uri)

    def file_uri(self, path: str) -> str:
        """The URI of a namespace file."""
        folder = "/".join(self.namespace.split("."))
        return f"kestra:///{folder}/_files/{path.lstrip('/')}"

    def error_logs(self) -> list[dict[str, Any]]:
        """The execution's ERROR log lines so far."""
        return list(self.errors)

    def now(self) -> datetime:
        """The runtime clock's current time."""
        return self.clock.utcnow()
