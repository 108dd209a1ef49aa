"""What a task sees while it runs: the run context. The engine implements it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.errors import TiercelError


class TaskFailedError(TiercelError):
    """Raised by a task to fail its attempt with a message (no traceback in the logs).

    Any other exception fails the attempt too; this one says the failure is expected
    (a Fail task, a non-zero exit code) rather than a bug.
    """


class RunContext(ABC):
    """The services a running task uses. One per attempt."""

    execution_id: str
    task_run_id: str
    task_id: str
    attempt: int
    namespace: str
    flow_id: str
    value: str | None

    @abstractmethod
    def render(self, value: Any) -> Any:
        """Render expressions in ``value`` (strings, and inside lists and mappings)."""

    @abstractmethod
    def render_text(self, template: str) -> str:
        """Render one template to text."""

    @abstractmethod
    def render_typed(self, template: str) -> Any:
        """Render a template that is a single ``{{ expression }}`` to its typed value."""

    @abstractmethod
    def log(self, level: str, message: str) -> None:
        """Write a log line of this attempt (``level``: TRACE, DEBUG, INFO, WARN, ERROR)."""

    @abstractmethod
    def metric(
        self, name: str, kind: str, value: float, tags: Mapping[str, str] | None = None
    ) -> None:
        """Record a ``counter`` or ``timer`` (seconds) entry; same name and tags add up."""

    @abstractmethod
    def warn(self) -> None:
        """End this attempt in WARNING instead of SUCCESS."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Wait on the runtime's clock (virtual in tests)."""

    @abstractmethod
    def working_dir(self) -> Path:
        """A directory for this attempt's files (shared inside a WorkingDirectory task)."""

    @abstractmethod
    async def put_file(self, source: Path, name: str) -> str:
        """Copy ``source`` into internal storage; return its ``kestra://`` URI."""

    @abstractmethod
    async def get_file(self, uri: str, target: Path) -> None:
        """Copy the internal storage file at ``uri`` (``kestra://...``) to ``target``.

        :raises TaskFailedError: if the URI names no file of internal storage.
        """

    @abstractmethod
    def set_labels(self, labels: Mapping[str, str]) -> None:
        """Add or override labels of the current execution."""

    @abstractmethod
    async def resume_execution(self, execution_id: str, inputs: Mapping[str, Any]) -> None:
        """Resume another (paused) execution."""

    @abstractmethod
    def state_store(self) -> StateStore:
        """The flow's state documents (the ``state`` tasks) and key-value store (``kv``)."""


class StateStore(ABC):
    """Small JSON documents kept across executions: state documents and namespace KV."""

    @abstractmethod
    async def get(self, key: str) -> Any | None:
        """The value at ``key``, or None."""

    @abstractmethod
    async def put(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        """Store ``value`` at ``key``."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
