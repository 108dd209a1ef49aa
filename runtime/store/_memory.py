"""The memory store: everything in this process (tests, benchmarks, throwaway runs)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from runtime.model._events import (
    Event,
    ExecutionCreated,
    ExecutionEnded,
    ExecutionStateChanged,
    LabelsChanged,
    LogEmitted,
    MetricEmitted,
)
from runtime.model._execution import Execution
from runtime.model._fold import ExecutionFold
from runtime.store._base import (
    ExecutionQuery,
    LogEntry,
    MetricAggregate,
    MetricEntry,
    Page,
    Store,
    StoredFlow,
    aggregate,
    level_at_least,
    matches,
)


class _Summary:
    """What searches filter on, kept up to date from events (no document is kept)."""

    __slots__ = ("ended", "execution", "state")

    def __init__(self, execution: Execution) -> None:
        self.execution = execution  # state and labels updated in place below
        self.state = execution.state.current
        self.ended: datetime | None = None


class MemoryStore(Store):
    """A store in memory. Nothing survives the process; ``flush`` returns at once.

    It keeps events only; documents are folded from them when asked for.
    """

    durable = False

    def __init__(self) -> None:
        self._events: dict[str, list[Event]] = {}
        self._summaries: dict[str, _Summary] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._metrics: dict[str, list[MetricEntry]] = {}
        self._flows: dict[tuple[str, str], dict[int, StoredFlow]] = {}
        self._deleted_flows: set[tuple[str, str]] = set()
        self._kv: dict[tuple[str, str], tuple[Any, datetime | None]] = {}

    def append(self, event: Event) -> None:
        execution_id = event.execution_id
        if isinstance(event, ExecutionCreated):
            self._events[execution_id] = []
            fold = ExecutionFold()
            fold.apply(event)
            assert fold.execution is not None
            self._summaries[execution_id] = _Summary(fold.execution)
        self._events[execution_id].append(event)
        kind = type(event)
        if kind is ExecutionStateChanged or kind is ExecutionEnded or kind is LabelsChanged:
            summary = self._summaries[execution_id]
            fold = ExecutionFold.load(summary.execution, event.seq - 1)
            fold.apply(event)
        elif isinstance(event, LogEmitted):
            self._logs.setdefault(execution_id, []).append(_log_entry(event))
        elif isinstance(event, MetricEmitted):
            self._metrics.setdefault(execution_id, []).append(_metric_entry(event))

    def snapshot(self, execution: Execution, seq: int) -> None:
        """Nothing to do: this store keeps every event and folds them when asked."""

    async def flush(self) -> None:
        return None

    async def events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        return [e for e in self._events.get(execution_id, ()) if e.seq > after_seq]

    async def _latest_snapshot(self, execution_id: str) -> tuple[Execution, int] | None:
        return None

    async def get_execution(self, execution_id: str) -> Execution | None:
        events = self._events.get(execution_id)
        if not events:
            return None
        fold = ExecutionFold()
        fold.apply_all(events)
        return fold.execution

    async def search(self, query: ExecutionQuery) -> Page[Execution]:
        found = [
            summary.execution
            for summary in reversed(self._summaries.values())
            if matches(summary.execution, query)
        ]
        found.sort(key=lambda e: e.state.start_date, reverse=True)  # stable: newest added first
        start = (max(query.page, 1) - 1) * query.size
        page = [await self.get_execution(e.id) for e in found[start : start + query.size]]
        return Page([e for e in page if e is not None], len(found))

    async def logs(
        self,
        execution_id: str,
        *,
        task_run_id: str | None = None,
        attempt: int | None = None,
        min_level: str | None = None,
    ) -> list[LogEntry]:
        return [
            log
            for log in self._logs.get(execution_id, ())
            if (task_run_id is None or log.task_run_id == task_run_id)
            and (attempt is None or log.attempt_number == attempt)
            and level_at_least(log.level, min_level)
        ]

    async def metrics(self, execution_id: str) -> list[MetricEntry]:
        return list(self._metrics.get(execution_id, ()))

    async def metric_aggregate(
        self,
        namespace: str,
        flow_id: str,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MetricAggregate:
        values: list[float] = []
        for execution_id, entries in self._metrics.items():
            summary = self._summaries.get(execution_id)
            if summary is None or (summary.execution.namespace, summary.execution.flow_id) != (
                namespace,
                flow_id,
            ):
                continue
            values += [
                m.value
                for m in entries
                if m.name == name
                and (start is None or m.timestamp >= start)
                and (end is None or m.timestamp < end)
            ]
        return aggregate(name, values)

    async def ended_since(
        self, after: datetime, after_id: str = "", limit: int = 500
    ) -> list[tuple[str, datetime]]:
        ends = sorted(
            (summary.execution.state.end_date, execution_id)
            for execution_id, summary in self._summaries.items()
            if summary.execution.state.current.terminal
            and summary.execution.state.end_date is not None
            and (summary.execution.state.end_date, execution_id) > (after, after_id)
        )
        return [(execution_id, ended) for ended, execution_id in ends[:limit]]

    async def unfinished(self) -> list[str]:
        return [
            execution_id
            for execution_id, summary in self._summaries.items()
            if not summary.execution.state.current.terminal
        ]

    async def save_flow(self, namespace: str, flow_id: str, revision: int, source: str) -> None:
        self._deleted_flows.discard((namespace, flow_id))
        revisions = self._flows.setdefault((namespace, flow_id), {})
        revisions.setdefault(
            revision,
            StoredFlow(
                namespace=namespace,
                id=flow_id,
                revision=revision,
                source=source,
                created=datetime.now(UTC),
            ),
        )

    async def flow_revisions(self, namespace: str, flow_id: str) -> list[StoredFlow]:
        revisions = self._flows.get((namespace, flow_id), {})
        return [revisions[r] for r in sorted(revisions)]

    async def latest_flows(self) -> list[StoredFlow]:
        return [
            revisions[max(revisions)]
            for key, revisions in sorted(self._flows.items())
            if revisions and key not in self._deleted_flows
        ]

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        key = (namespace, flow_id)
        if key not in self._flows or key in self._deleted_flows:
            return False
        self._deleted_flows.add(key)
        return True

    async def delete_execution(self, execution_id: str) -> bool:
        existed = self._events.pop(execution_id, None) is not None
        self._summaries.pop(execution_id, None)
        self._logs.pop(execution_id, None)
        self._metrics.pop(execution_id, None)
        return existed

    async def purge(self, ended_before: datetime) -> list[tuple[str, str, str]]:
        doomed = [
            summary.execution
            for summary in self._summaries.values()
            if summary.execution.state.current.terminal
            and summary.execution.state.end_date is not None
            and summary.execution.state.end_date < ended_before
        ]
        for execution in doomed:
            await self.delete_execution(execution.id)
        return [(e.namespace, e.flow_id, e.id) for e in doomed]

    async def kv_get(self, namespace: str, key: str, now: datetime) -> Any | None:
        entry = self._kv.get((namespace, key))
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and now >= expires:
            del self._kv[(namespace, key)]
            return None
        return copy.deepcopy(value)

    async def kv_put(self, namespace: str, key: str, value: Any, expires: datetime | None) -> None:
        self._kv[(namespace, key)] = (copy.deepcopy(value), expires)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return self._kv.pop((namespace, key), None) is not None


def _log_entry(event: LogEmitted) -> LogEntry:
    return LogEntry(
        execution_id=event.execution_id,
        seq=event.seq,
        timestamp=event.time,
        level=event.level,
        message=event.message,
        task_run_id=event.task_run_id,
        task_id=event.task_id,
        attempt_number=event.attempt,
    )


def _metric_entry(event: MetricEmitted) -> MetricEntry:
    return MetricEntry(
        execution_id=event.execution_id,
        task_run_id=event.task_run_id,
        name=event.name,
        type=event.type,
        value=event.value,
        tags=dict(event.tags),
        timestamp=event.time,
        attempt_number=event.attempt,
    )
