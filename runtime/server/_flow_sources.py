"""Flows of the daemon: those kept in the store, and the files of ``--flows DIR``, loaded at
start and again when a file changes (polled: no platform-specific watcher to depend on).
In a cluster, the store is polled too: other nodes add, change and delete flows there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import structlog

from runtime.engine import Runtime
from runtime.errors import FlowValidationError
from runtime.flows import FLOW_SUFFIXES
from runtime.parsing import load_flow, parse_flow
from runtime.store import StoredFlow, StoreError

log = structlog.get_logger("tiercel.flows")

Stamp = tuple[int, int]


async def load_stored_flows(runtime: Runtime) -> int:
    """Register the latest revision of every flow the store keeps; return how many."""
    count = 0
    for stored in await runtime.store.latest_flows():
        if _register_stored(runtime, stored):
            count += 1
    return count


def _register_stored(runtime: Runtime, stored: StoredFlow) -> bool:
    try:
        flow = parse_flow(stored.source, f"{stored.namespace}.{stored.id}@{stored.revision}")
    except FlowValidationError as exc:
        log.error(  # noqa: TRY400 - the problems say it all; no traceback
            "a stored flow no longer parses; it is not loaded",
            flow=f"{stored.namespace}.{stored.id}",
            revision=stored.revision,
            problems=[str(p) for p in exc.problems],
        )
        return False
    runtime.adopt_stored_flow(flow, stored.revision)
    return True


class StoredFlows:
    """The flows of the store, kept registered in the runtime: on a node of a cluster,
    other nodes (API nodes, the UI's editor, their ``--flows`` folders) add, change and
    delete flows in the shared store, and this node's schedules and Flow triggers must
    follow. Polled every ``interval`` seconds; each poll is one read of the latest
    revisions."""

    def __init__(
        self, runtime: Runtime, on_change: Callable[[], None], interval: float = 1.0
    ) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.interval = interval
        self._unparsable: set[tuple[str, str, int]] = set()
        """Revisions that do not parse (logged once, not at every poll)."""

    async def sync(self) -> bool:
        """Bring the runtime in line with the store; True if any flow changed."""
        before = {(f.namespace, f.id) for f in self.runtime.flows.all()}
        latest = {(f.namespace, f.id): f for f in await self.runtime.store.latest_flows()}
        changed = False
        for key, stored in latest.items():
            known = self.runtime.flows.get(*key)
            if known is not None and (known.revision or 0) >= stored.revision:
                continue  # known already (or this node stored a newer one since the read)
            if (*key, stored.revision) in self._unparsable:
                continue
            if not _register_stored(self.runtime, stored):
                self._unparsable.add((*key, stored.revision))
            else:
                log.info("flow changed in the store", flow=".".join(key), revision=stored.revision)
                changed = True
        for key in sorted(before - set(latest)):  # flows registered since the read stay
            if self.runtime.forget_flow(*key):
                log.info("flow deleted in the store", flow=".".join(key))
                changed = True
        if changed:
            self.on_change()
        return changed

    async def watch(self) -> None:
        """Sync every ``interval`` seconds, forever (a failed read is tried at the next)."""
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.sync()
            except StoreError as exc:
                log.warning("cannot read the store's flows", error=str(exc))


class FlowFolder:
    """The flow files of a folder, kept registered in the runtime.

    A new or changed file is parsed and registered (a changed text is a new revision); an
    invalid file is logged with its problems and the previous revision stays; a deleted
    file deletes its flow unless another file defines it.
    """

    def __init__(
        self,
        runtime: Runtime,
        folder: Path,
        on_change: Callable[[], None],
        interval: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.folder = folder
        self.on_change = on_change
        self.interval = interval
        self._stamps: dict[Path, Stamp] = {}
        self._defines: dict[Path, tuple[str, str]] = {}

    def _scan(self) -> dict[Path, Stamp]:
        found: dict[Path, Stamp] = {}
        for path in self.folder.rglob("*"):
            if path.suffix not in FLOW_SUFFIXES:
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                found[path] = (stat.st_mtime_ns, stat.st_size)
        return found

    async def sync(self) -> bool:
        """Bring the runtime in line with the folder; True if any flow changed."""
        current = await anyio.to_thread.run_sync(self._scan)
        changed = False
        for path in sorted(current):
            if self._stamps.get(path) == current[path]:
                continue
            self._stamps[path] = current[path]
            try:
                flow = await anyio.to_thread.run_sync(load_flow, path)
            except FlowValidationError as exc:
                log.error(  # noqa: TRY400 - the problems say it all; no traceback
                    "invalid flow file; its previous revision (if any) stays",
                    file=str(path),
                    problems=[str(p) for p in exc.problems],
                )
                continue
            before = self.runtime.flows.get(flow.namespace, flow.id)
            kept = await self.runtime.register_flow(flow)
            self._defines[path] = (flow.namespace, flow.id)
            if before is None or before.revision != kept.revision:
                log.info("flow loaded", flow=kept.uid, revision=kept.revision, file=str(path))
                changed = True
        for path in sorted(set(self._stamps) - set(current)):
            del self._stamps[path]
            key = self._defines.pop(path, None)
            if key is None or key in self._defines.values():
                continue
            if await self.runtime.delete_flow(*key):
                log.info("flow file removed: flow deleted", flow=".".join(key), file=str(path))
                changed = True
        if changed:
            self.on_change()
        return changed

    async def watch(self) -> None:
        """Sync every ``interval`` seconds, forever."""
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.sync()
            except OSError as exc:
                log.error(  # noqa: TRY400 - the error says it all
                    "cannot read the flow folder", folder=str(self.folder), error=str(exc)
                )
