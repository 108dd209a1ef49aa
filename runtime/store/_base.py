"""The Store interface: an event log per execution, with snapshots and the queries a daemon
and a UI need. Implementations: memory, SQLite (the default), PostgreSQL (scale-out)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import msgspec

from runtime.model._events import AnyEvent, Event
from runtime.model._execution import Execution
from runtime.model._fold import ExecutionFold, FoldError
from runtime.model._states import State

T = TypeVar("T")

LEVELS = {"TRACE": 0, "DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40}


class ExecutionQuery(msgspec.Struct, kw_only=True):
    """Filters for listing executions; newest first, ``size`` per page (pages from 1)."""

    namespace: str | None = None
    """Exact namespace, or its sub-namespaces too (``company`` matches ``company.team``)."""
    flow_id: str | None = None
    states: list[State] | None = None
    labels: dict[str, str] | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    ended_after: datetime | None = None
    """Only executions that ended at or after this date (finished ones, then)."""
    page: int = 1
    size: int = 25


class Page(msgspec.Struct, Generic[T]):
    """One page of results and the total count across pages."""

    items: list[T]
    total: int


class LogEntry(msgspec.Struct, kw_only=True, rename="camel"):
    """A log line of an execution."""

    execution_id: str
    seq: int
    timestamp: datetime
    level: str
    message: str
    task_run_id: str | None = None
    task_id: str | None = None
    attempt_number: int | None = None


class MetricEntry(msgspec.Struct, kw_only=True, rename="camel"):
    """One metric entry of an attempt."""

    execution_id: str
    task_run_id: str | None
    name: str
    type: str
    value: float
    tags: dict[str, str]
    timestamp: datetime
    attempt_number: int | None = None


class MetricAggregate(msgspec.Struct, kw_only=True):
    """Sum, average, minimum and maximum of a metric over executions of a flow."""

    name: str
    count: int
    sum: float
    avg: float | None
    min: float | None
    max: float | None


class StoredFlow(msgspec.Struct, kw_only=True):
    """One revision of a flow, with the text it was written in."""

    namespace: str
    id: str
    revision: int
    source: str
    created: datetime


EVENT_ENCODER = msgspec.json.Encoder()
EVENT_DECODER = msgspec.json.Decoder(AnyEvent)
SNAPSHOT_DECODER = msgspec.json.Decoder(Execution)


class Store(ABC):
    """Where executions live. Appends are batched (group commit) and durable after ``flush``.

    Events of one execution must be appended in sequence order; the document is a fold of
    them, and ``get_execution`` returns the latest snapshot with later events folded on top.
    """

    durable: bool = False
    """Whether what is flushed survives the process (memory: no)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - most stores need nothing here
        """Prepare the store (create tables, run migrations, start the writer)."""

    async def close(self) -> None:  # noqa: B027 - most stores need nothing here
        """Flush what is pending and release resources."""

    # -- writing ------------------------------------------------------------------------

    @abstractmethod
    def append(self, event: Event) -> None:
        """Queue an event; it is durable once a later ``flush`` returns."""

    @abstractmethod
    def snapshot(self, execution: Execution, seq: int) -> None:
        """Queue a snapshot of ``execution`` as of event ``seq`` (encoded now)."""

    @abstractmethod
    async def flush(self) -> None:
        """Return once everything appended so far is stored."""

    # -- reading ------------------------------------------------------------------------

    @abstractmethod
    async def events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """The events of an execution with a sequence number above ``after_seq``, in order."""

    @abstractmethod
    async def _latest_snapshot(self, execution_id: str) -> tuple[Execution, int] | None:
        """The newest snapshot and the sequence number it reflects."""

    async def get_execution(self, execution_id: str) -> Execution | None:
        """The execution as of its last stored event, or None."""
        found = await self._latest_snapshot(execution_id)
        if found is None:
            fold = ExecutionFold()
            fold.apply_all(await self.events(execution_id))
            return fold.execution
        execution, seq = found
        fold = ExecutionFold.load(execution, seq)
        try:
            fold.apply_all(await self.events(execution_id, seq))
        except FoldError:
            return execution
        return fold.execution

    @abstractmethod
    async def search(self, query: ExecutionQuery) -> Page[Execution]:
        """Executions matching ``query``, newest first."""

    @abstractmethod
    async def logs(
        self,
        execution_id: str,
        *,
        task_run_id: str | None = None,
        attempt: int | None = None,
        min_level: str | None = None,
    ) -> list[LogEntry]:
        """Log lines of an execution, in order, filtered."""

    @abstractmethod
    async def metrics(self, execution_id: str) -> list[MetricEntry]:
        """Metric entries of an execution, in order."""

    @abstractmethod
    async def metric_aggregate(
        self,
        namespace: str,
        flow_id: str,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MetricAggregate:
        """Aggregates of a metric over the executions of a flow in a time range."""

    @abstractmethod
    async def ended_since(
        self, after: datetime, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, datetime]]:
        """(id, end date) of executions in a final state that ended after ``(after,
        after_id)`` in (end date, id) order, at most ``limit``: a cursor over ends, for
        whoever follows them from the store (Flow triggers in a cluster)."""

    @abstractmethod
    async def unfinished(self) -> list[str]:
        """Ids of executions that have not reached a final state (to recover)."""

    # -- flows --------------------------------------------------------------------------

    @abstractmethod
    async def save_flow(self, namespace: str, flow_id: str, revision: int, source: str) -> None:
        """Keep a revision of a flow (idempotent)."""

    @abstractmethod
    async def flow_revisions(self, namespace: str, flow_id: str) -> list[StoredFlow]:
        """Every stored revision of a flow, oldest first (deleted flows' too)."""

    @abstractmethod
    async def latest_flows(self) -> list[StoredFlow]:
        """The latest revision of every flow that is not deleted, by namespace and id."""

    @abstractmethod
    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        """Mark a flow deleted (its revisions stay, for the executions that ran them);
        True if it existed and was not deleted. Saving a revision again revives it."""

    # -- retention ----------------------------------------------------------------------

    @abstractmethod
    async def delete_execution(self, execution_id: str) -> bool:
        """Delete an execution with its events, logs and metrics; True if it existed."""

    @abstractmethod
    async def purge(self, ended_before: datetime) -> list[tuple[str, str, str]]:
        """Delete finished executions that ended before a date; return (ns, flow, id) of each."""

    # -- key-value documents ------------------------------------------------------------

    @abstractmethod
    async def kv_get(self, namespace: str, key: str, now: datetime) -> Any | None:
        """A stored value, None when missing or expired."""

    @abstractmethod
    async def kv_put(self, namespace: str, key: str, value: Any, expires: datetime | None) -> None:
        """Store a value (durably once flushed)."""

    @abstractmethod
    async def kv_delete(self, namespace: str, key: str) -> bool:
        """Delete a value; True if it existed."""


def level_at_least(level: str, minimum: str | None) -> bool:
    """Whether ``level`` is ``minimum`` or more severe."""
    if minimum is None:
        return True
    return LEVELS.get(level, 0) >= LEVELS.get(minimum.upper(), 0)


def matches(execution: Execution, query: ExecutionQuery) -> bool:
    """Whether an execution passes a query's filters (used by the memory store)."""
    if query.namespace is not None and not (
        execution.namespace == query.namespace
        or execution.namespace.startswith(query.namespace + ".")
    ):
        return False
    if query.flow_id is not None and execution.flow_id != query.flow_id:
        return False
    if query.states is not None and execution.state.current not in query.states:
        return False
    start = execution.state.start_date
    if query.started_after is not None and start < query.started_after:
        return False
    if query.started_before is not None and start >= query.started_before:
        return False
    if query.ended_after is not None:
        end = execution.state.end_date
        if end is None or not execution.state.current.terminal or end < query.ended_after:
            return False
    if query.labels:
        labels = {label.key: label.value for label in execution.labels}
        if any(labels.get(k) != v for k, v in query.labels.items()):
            return False
    return True


def aggregate(name: str, values: Sequence[float]) -> MetricAggregate:
    """The aggregate of some metric values."""
    if not values:
        return MetricAggregate(name=name, count=0, sum=0.0, avg=None, min=None, max=None)
    total = float(sum(values))
    return MetricAggregate(
        name=name,
        count=len(values),
        sum=total,
        avg=total / len(values),
        min=float(min(values)),
        max=float(max(values)),
    )
