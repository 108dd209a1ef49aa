"""The embedding API: a Runtime owns the actor system and starts executions; a handle
follows and controls one."""

from __future__ import annotations

import bisect
import contextlib
import os
import tempfile
from collections import OrderedDict, defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
import anyio.lowlevel

from actors import (
    Actor,
    ActorDeadError,
    ActorRef,
    ActorSystem,
    ActorSystemClosedError,
    Clock,
    RealClock,
)
from runtime.engine._execution import ExecutionActor, new_id
from runtime.engine._messages import (
    ChildExecutionEnded,
    CommandResult,
    Dequeued,
    Kill,
    Pause,
    Quiesce,
    Restart,
    Resume,
)
from runtime.engine._replay import replay_history
from runtime.engine._retry import backoff_of, retry_for_task_run
from runtime.engine._services import AttemptRunner, Services
from runtime.errors import InputValidationError, Problem, TiercelError
from runtime.expressions import ExpressionEngine
from runtime.flows import FlowRepository, flow_source
from runtime.inputs import resolve_inputs
from runtime.model import ConcurrencyBehavior, FileInput, Flow
from runtime.model._events import Event, ExecutionCreated, ExecutionEnded
from runtime.model._execution import Execution
from runtime.model._fold import ExecutionFold, fold
from runtime.model._states import RESTARTABLE, State
from runtime.parsing import parse_flow
from runtime.statestore import StoreStateStore
from runtime.storage import storage_for
from runtime.store import MemoryStore, SqliteStore, Store
from runtime.tasks.core.flow import Pause as PauseTask


class ExecutionError(TiercelError):
    """A command on an execution that cannot be carried out (with the reason)."""


class ExecutionNotFoundError(ExecutionError, LookupError):
    """No execution with this id in this runtime."""


class _Flag:
    """A flag others can wait for; its Event exists only while someone waits (memory: an
    idle asyncio Event costs ~700 bytes, and each execution has two of these)."""

    __slots__ = ("_event", "_value")

    def __init__(self) -> None:
        self._value = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        event, self._event = self._event, None
        if event is not None:
            event.set()

    async def wait(self) -> None:
        if self._value:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


class _Channel:
    """The events of one execution: kept in order, with waiters for new ones."""

    __slots__ = (
        "ended",
        "events",
        "execution",
        "quiet",
        "ref",
        "snapshot_seq",
        "started",
        "store",
        "tracker",
        "waiters",
    )

    def __init__(self, store: Store) -> None:
        self.store = store
        self.snapshot_seq = 0
        self.events: list[Event] = []
        self.waiters: list[anyio.Event] = []
        self.started = _Flag()
        self.ended = _Flag()
        self.quiet: _Flag | None = None
        self.execution: Execution | None = None
        self.ref: ActorRef[object] | None = None
        self.tracker: ExecutionFold | None = None
        """For an execution that runs elsewhere: the fold its events from the store go
        through (incremental: following a large execution stays linear)."""

    @classmethod
    def of_history(cls, store: Store, events: list[Event]) -> _Channel:
        """A channel for an execution read back from the store (not running here)."""
        channel = cls(store)
        channel.events = events
        channel.snapshot_seq = events[-1].seq
        channel.execution = fold(events)
        channel.started.set()
        if channel.execution.state.current.terminal:
            channel.ended.set()
        return channel

    def publish(self, event: Event) -> None:
        self.events.append(event)
        self.store.append(event)
        execution = self.execution
        if execution is not None and (
            type(event) is ExecutionEnded
            or event.seq - self.snapshot_seq >= max(SNAPSHOT_EVERY, len(execution.task_run_list))
        ):
            # Snapshots only now and then: their cost grows with the execution's size.
            self.snapshot_seq = event.seq
            self.store.snapshot(execution, event.seq)
        if self.waiters:
            self.wake()

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.set()


SNAPSHOT_EVERY = 2000
"""Events between two snapshots of an execution (at least: as many as it has task runs)."""


class Placement(Protocol):
    """Where executions run when the runtime is one node of a cluster.

    An executor runs executions (``runs_here``) and owns each one it starts; an API node
    only creates them (an executor takes them). Commands to an execution that does not
    run on this node are forwarded to the node that runs it.
    """

    @property
    def runs_here(self) -> bool:
        """Whether executions started on this node run on it."""
        ...

    async def claim_new(self, execution_id: str) -> None:
        """Own a new execution before it starts here."""
        ...

    async def announce(self, execution_id: str) -> None:
        """Tell the cluster a new execution waits for an executor (it is durable)."""
        ...

    async def forward(
        self, execution_id: str, action: str, payload: dict[str, Any]
    ) -> Execution | None:
        """Have the node running ``execution_id`` apply ``action`` (kill, pause, resume,
        restart, replay, mark, change-status); return the document it answered with.

        :raises ExecutionError: if it was refused.
        :raises InputValidationError: if resume inputs were refused.
        """
        ...


class ConcurrencyGate(Protocol):
    """Flow ``concurrency`` limits kept outside the runtime (a cluster's database), so that
    they hold across every runtime that shares the gate. Without one, a runtime counts its
    own executions in memory.

    A slot belongs to an execution, not to a runtime: whichever runtime runs it next (after
    a crash or a hand-over) finds it. When a slot frees, the gate gives it to the oldest
    queued execution of the flow; whoever owns the gate calls :meth:`Runtime.grant` on the
    runtime that runs that execution.
    """

    async def admit(self, flow: Flow, execution_id: str) -> bool:
        """A slot of ``flow`` for ``execution_id`` if one is free or it holds one already
        (True). Otherwise, when the flow's behavior is QUEUE, it keeps (or takes) its place
        in the flow's queue; False either way."""
        ...

    async def hold(self, flow: Flow, execution_id: str) -> None:
        """Count ``execution_id`` as running whatever the limit (it runs already: taken
        over, restarted or replayed); an execution holds one slot at most."""
        ...

    async def release(self, execution_id: str) -> None:
        """``execution_id`` ended or is gone: free its slot or its place in the queue, and
        give freed slots to the oldest queued executions of its flow."""
        ...


_HELD_BACK = {
    ConcurrencyBehavior.QUEUE: "queue",
    ConcurrencyBehavior.CANCEL: "cancel",
    ConcurrencyBehavior.FAIL: "fail",
}
"""The mode of an execution that found its flow's concurrency limit reached."""


class ExecutionHandle:
    """Follow and control one execution."""

    def __init__(
        self, runtime: Runtime, execution_id: str, snapshot: Execution | None = None
    ) -> None:
        self.runtime = runtime
        self.id = execution_id
        self.snapshot = snapshot
        """For a replay: the new execution as created (RESTARTED), before it ran on."""
        self._own = runtime._channels.get(execution_id)

    @property
    def _channel(self) -> _Channel:
        # The runtime may forget an ended execution (``retain_ended``); its handles do not.
        found = self.runtime._channels.get(self.id)
        if found is not None:
            self._own = found
            return found
        if self._own is not None:
            return self._own
        return self.runtime._channel(self.id)

    @property
    def execution(self) -> Execution:
        """The execution document as it is now (read it, do not change it)."""
        channel = self._channel
        if channel.execution is None:
            raise ExecutionError(f"execution {self.id} has not started yet")
        return channel.execution

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the execution from the first, then live ones, until it ends."""
        channel = self._channel
        index = 0
        while True:
            while index < len(channel.events):
                event = channel.events[index]
                index += 1
                yield event
                if isinstance(event, ExecutionEnded) and channel.ended.is_set():
                    return
            waiter = anyio.Event()
            channel.waiters.append(waiter)
            await waiter.wait()

    async def result(self) -> Execution:
        """Wait for the execution to end; return its final document."""
        channel = self._channel
        if channel.ref is None and not channel.ended.is_set():
            # It runs on another node: follow its events in the store until it ends.
            last = channel.events[-1].seq if channel.events else 0
            async for _ in self.runtime.follow(self.id, last):
                pass
        await channel.ended.wait()
        assert channel.execution is not None
        return channel.execution

    async def wait_for_state(self, *states: State) -> Execution:
        """Wait until the execution is in one of ``states``.

        :raises ExecutionError: if it ends in another state.
        """
        async for _ in self.changes():
            execution = self._channel.execution
            if execution is not None and execution.state.current in states:
                return execution
        raise ExecutionError(f"execution {self.id} ended without reaching {states}")

    async def changes(self) -> AsyncIterator[None]:
        """Yield now, then after every batch of new events, until the execution ends."""
        channel = self._channel
        while True:
            yield None
            if channel.ended.is_set():
                return
            waiter = anyio.Event()
            channel.waiters.append(waiter)
            await waiter.wait()

    async def kill(self) -> None:
        """Kill the execution (KILLING, then KILLED)."""
        await self.runtime.kill(self.id)

    async def pause(self) -> None:
        """Pause a running execution."""
        await self.runtime.pause(self.id)

    async def resume(self, inputs: Mapping[str, Any] | None = None) -> None:
        """Resume a paused execution, with the Pause task's ``onResume`` inputs."""
        await self.runtime.resume(self.id, inputs)

    async def restart(self) -> Execution:
        """Re-run the failed task runs of a finished execution, in place.

        Returns the execution as the restart left it (RESTARTED), before it runs on.
        """
        return await self.runtime.restart(self.id)


def envs_from_environment(prefix: str = "ENV_") -> dict[str, str]:
    """Kestra's ``envs``: environment variables named ``{prefix}NAME``, as ``envs.name``."""
    return {
        name[len(prefix) :].lower(): value
        for name, value in os.environ.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


default_store_factory: Callable[[], Store] | None = None
"""When set, the store of every Runtime given neither ``store`` nor ``data_dir`` (instead
of a MemoryStore): for test suites and apps that want every runtime on another store."""


class Runtime:
    """Tiercel's engine, embedded: ``async with Runtime() as runtime``.

    ``data_dir`` holds internal storage and working directories (a temporary folder by
    default). ``clock`` is the real clock unless a test passes a ``VirtualClock``.
    ``envs`` is what expressions see as ``envs``; by default the environment variables
    whose names start with ``env_prefix`` (``ENV_HOME`` becomes ``envs.home``).

    ``store`` keeps executions: by default SQLite in ``data_dir/tiercel.db`` when a data
    folder is given, memory otherwise (or ``default_store_factory()`` when set). With
    ``recover`` (the default), entering the runtime resumes every execution the store
    holds unfinished. ``max_file_bytes`` caps each file put in internal storage (1 GiB
    by default). ``retain_ended`` is how many ended
    executions stay in memory (the most recent); older ones are read back from the store
    when asked for. None keeps them all. ``attempt_runner`` runs attempts of runnable
    tasks elsewhere (a cluster's workers) instead of in this process. ``concurrency_gate``
    enforces flow concurrency limits together with other runtimes (see
    :class:`ConcurrencyGate`).
    """

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        clock: Clock | None = None,
        flows: FlowRepository | None = None,
        store: Store | None = None,
        envs: Mapping[str, str] | None = None,
        env_prefix: str = "ENV_",
        shutdown_timeout: float = 10.0,
        recover: bool = True,
        max_file_bytes: int | None = None,
        retain_ended: int | None = 10_000,
        attempt_runner: AttemptRunner | None = None,
        placement: Placement | None = None,
        concurrency_gate: ConcurrencyGate | None = None,
    ) -> None:
        from runtime.plugins import load_entry_points

        load_entry_points()
        self.clock = clock or RealClock()
        self.flows = flows or FlowRepository()
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="tiercel-")
            data_dir = Path(self._temp.name)
        self.recover_on_start = recover
        if store is None:
            if self._temp is None:
                store = SqliteStore(data_dir / "tiercel.db")
            else:
                store = default_store_factory() if default_store_factory else MemoryStore()
        self.store = store
        self.data_dir = data_dir
        if max_file_bytes is not None:
            storage_for(data_dir).max_file_bytes = max_file_bytes
        self.system = ActorSystem("tiercel", clock=self.clock, shutdown_timeout=shutdown_timeout)
        self.expressions = ExpressionEngine()
        self._state_stores: dict[str, StoreStateStore] = {}
        self._channels: dict[str, _Channel] = {}
        self._running: dict[str, set[str]] = defaultdict(set)
        self._queued: dict[str, deque[tuple[Flow, ExecutionCreated]]] = defaultdict(deque)
        self._watchers: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self._follow_ups = 0
        self._registered: dict[tuple[str, str], Flow] = {}
        self.retain_ended = retain_ended
        self.placement = placement
        self.concurrency_gate = concurrency_gate
        self._gated: set[str] = set()
        """Executions here that hold a slot of the gate or wait in its queue."""
        self._releasing: dict[str, anyio.Event] = {}
        self._applying: set[str] = set()
        self._ended_order: OrderedDict[str, None] = OrderedDict()
        self._end_hooks: list[Callable[[Execution], None]] = []
        self._aborted = anyio.Event()
        self._settled = anyio.Event()
        self.remote_poll: float | None = None
        """Seconds between reads of the store while following an execution that runs on
        another node (None: 0.2 s with a placement, else 0.5 s)."""
        self.services = Services(
            clock=self.clock,
            expressions=self.expressions,
            data_dir=self.data_dir,
            state_store=self._state_store,
            start_child=self._start_child,
            kill_execution=self.kill,
            resume_execution=self.resume,
            watch_child=self._watch_child,
            resolve_flow=self.flows.get,
            envs=dict(envs) if envs is not None else envs_from_environment(env_prefix),
            attempt_runner=attempt_runner,
            durable=self.store.flush,
        )

    async def __aenter__(self) -> Self:
        await self.store.open()
        try:
            await self.system.__aenter__()
        except BaseException:
            await self.store.close()
            raise
        if self.recover_on_start:
            await self.recover()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and not self.system.closing:
                # One deadline for the whole stop: what quiescing used is not given again.
                deadline = anyio.current_time() + self.system.shutdown_timeout
                await self.quiesce(self.system.shutdown_timeout)
                left = 0.0 if self._aborted.is_set() else deadline - anyio.current_time()
                await self.system.shutdown(max(0.0, left))
            await self.system.__aexit__(exc_type, exc, tb)
        finally:
            try:
                await self.store.close()
            finally:
                if self._temp is not None:
                    self._temp.cleanup()

    async def recover(self) -> list[str]:
        """Resume every execution the store holds unfinished (after a crash or a stop).

        Each is rebuilt from its events; attempts that were running are marked FAILED
        ("process lost") and retried by their policy; timers are re-armed at their due times.
        Returns the ids of the executions resumed.
        """
        resumed: list[str] = []
        for execution_id in await self.store.unfinished():
            if execution_id in self._channels:
                continue
            if await self._adopt(execution_id, wait=False):
                resumed.append(execution_id)
        for execution_id in resumed:
            await self._channels[execution_id].started.wait()
        return resumed

    async def adopt(self, execution_id: str) -> bool:
        """Run an unfinished execution here, rebuilt from its events (a cluster executor
        took it over). Returns False if there is nothing to run (no events, or it ended).
        """
        found = self._channels.get(execution_id)
        if found is not None and found.ref is not None and found.ref.is_alive:
            return True
        if found is not None:
            del self._channels[execution_id]
        return await self._adopt(execution_id, wait=True)

    async def _adopt(self, execution_id: str, *, wait: bool) -> bool:
        events = await self.store.events(execution_id)
        if not events or not isinstance(events[0], ExecutionCreated):
            return False
        state = fold(events).state.current
        if state.terminal:
            return False
        created = events[0]
        flow = await self._flow_for(created.namespace, created.flow_id, created.flow_revision)
        if flow is None:
            self.system.log.error(
                "cannot recover an execution: its flow is unknown",
                execution_id=execution_id,
                flow=f"{created.namespace}.{created.flow_id}",
            )
            return False
        mode = "recover"
        dequeue = False
        if self.concurrency_gate is not None and flow.concurrency is not None:
            mode, dequeue = await self._readmit(flow, execution_id, state)
        channel = _Channel(self.store)
        channel.events = list(events)
        channel.snapshot_seq = events[-1].seq
        self._channels[execution_id] = channel
        if self.concurrency_gate is not None and flow.concurrency is not None:
            if mode == "recover":
                self._running[flow.uid].add(execution_id)
        elif state is State.QUEUED:
            self._queued[flow.uid].append((flow, created))
        else:
            self._running[flow.uid].add(execution_id)

        def on_end(done: Execution, flow: Flow = flow) -> None:
            self._ended(flow, done)

        actor = ExecutionActor(
            flow, self.services, channel, history=events, on_end=on_end, mode=mode
        )
        actor.channel = channel
        channel.ref = self._spawn_actor(actor, execution_id)
        if dequeue:
            channel.ref.tell_nowait(Dequeued())
        if wait:
            await channel.started.wait()
        return True

    async def _readmit(self, flow: Flow, execution_id: str, state: State) -> tuple[str, bool]:
        """The gate's word on an unfinished execution taken over: the actor's mode, and
        whether a QUEUED one may run at once (its slot was granted, maybe to a runtime that
        died since). One that ran already keeps its slot, or holds one again."""
        gate = self.concurrency_gate
        assert gate is not None
        assert flow.concurrency is not None
        if state is State.QUEUED or state is State.CREATED:
            admitted = await gate.admit(flow, execution_id)
            mode = "recover" if admitted else _HELD_BACK[flow.concurrency.behavior]
            if admitted or mode == "queue":
                self._gated.add(execution_id)
            return mode, admitted and state is State.QUEUED
        await gate.hold(flow, execution_id)
        self._gated.add(execution_id)
        return "recover", False

    def abandon(self, execution_id: str) -> None:
        """Stop running an execution here without a word (another executor owns it now):
        its actor is killed, nothing is written, its attempts on workers go on."""
        channel = self._channels.pop(execution_id, None)
        self._ended_order.pop(execution_id, None)
        self._gated.discard(execution_id)
        if channel is None:
            return
        if channel.execution is not None:
            for running in self._running.values():
                running.discard(execution_id)
        if channel.ref is not None and channel.ref.is_alive:
            channel.ref.kill()
        channel.ended.set()
        channel.wake()

    def _spawn_actor(self, actor: ExecutionActor, execution_id: str) -> ActorRef[object]:
        return self.system.spawn(lambda: actor, name=f"execution:{execution_id}")

    async def register_flow(self, flow: Flow) -> Flow:
        """Keep ``flow`` as the latest revision of its id, numbered by the store.

        Text that matches the stored latest revision keeps its number; changed text becomes
        the next revision, stored before any execution uses it (so recovery after a crash
        runs the revision the execution started with). Returns the flow as kept.
        """
        key = (flow.namespace, flow.id)
        known = self._registered.get(key)
        if known is flow:
            return flow
        source = flow_source(flow)
        if known is not None and flow_source(known) == source:
            flow.revision = known.revision or 1
        else:
            flow.revision = await self._store_revision(flow.namespace, flow.id, source)
        kept = self.flows.add(flow)
        if kept is not flow:  # the repository had this revision already (same text)
            flow = kept
        self._registered[key] = flow
        return flow

    async def _store_revision(self, namespace: str, flow_id: str, source: str) -> int:
        """The revision number of ``source``: the latest stored one if it is that text,
        else the next, stored now. Other processes may store revisions of the same flow
        at the same time (API nodes of a cluster): a number taken meanwhile by another
        text is never reused, the next free one is taken instead."""
        stored = await self.store.flow_revisions(namespace, flow_id)
        while True:
            if stored and stored[-1].source == source:
                revision = stored[-1].revision
            else:
                revision = stored[-1].revision + 1 if stored else 1
            # stores the revision if the number is free; revives a deleted flow either way
            await self.store.save_flow(namespace, flow_id, revision, source)
            stored = await self.store.flow_revisions(namespace, flow_id)
            if any(s.revision == revision and s.source == source for s in stored):
                return revision

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        """Delete a flow: it can no longer be started; its executions keep their revision."""
        self.forget_flow(namespace, flow_id)
        return await self.store.delete_flow(namespace, flow_id)

    def adopt_stored_flow(self, flow: Flow, revision: int) -> Flow:
        """Make a revision read from the store this process's latest of its flow, without
        writing anything (the store has it: another process, or an earlier run, saved it)."""
        flow.revision = revision
        kept = self.flows.add(flow)
        if self.flows.get(flow.namespace, flow.id) is kept:
            self._registered[(flow.namespace, flow.id)] = kept
        return kept

    def forget_flow(self, namespace: str, flow_id: str) -> bool:
        """Forget a flow in this process only (another process deleted it from the store);
        True if it was known."""
        self._registered.pop((namespace, flow_id), None)
        return self.flows.remove(namespace, flow_id)

    async def _flow_for(self, namespace: str, flow_id: str, revision: int) -> Flow | None:
        flow = self.flows.get(namespace, flow_id, revision)
        if flow is not None:
            return flow
        for stored in await self.store.flow_revisions(namespace, flow_id):
            if stored.revision == revision:
                parsed = parse_flow(stored.source, f"{namespace}.{flow_id}@{revision}")
                parsed.revision = revision
                return self.flows.add(parsed)
        return None

    # -- starting -----------------------------------------------------------------------

    def _state_store(self, namespace: str) -> StoreStateStore:
        found = self._state_stores.get(namespace)
        if found is None:
            found = self._state_stores[namespace] = StoreStateStore(
                self.store, namespace, self.clock
            )
        return found

    def _channel(self, execution_id: str) -> _Channel:
        try:
            return self._channels[execution_id]
        except KeyError:
            raise ExecutionNotFoundError(f"no execution {execution_id!r}") from None

    async def _load(self, execution_id: str) -> _Channel:
        """The channel of an execution: in memory, else read back from the store."""
        found = self._channels.get(execution_id)
        if found is not None:
            if execution_id in self._ended_order:
                self._ended_order.move_to_end(execution_id)
            return found
        events = await self.store.events(execution_id)
        if not events:
            raise ExecutionNotFoundError(f"no execution {execution_id!r}")
        found = self._channels.get(execution_id)  # loaded by someone else meanwhile
        if found is not None:
            return found
        channel = _Channel.of_history(self.store, events)
        self._channels[execution_id] = channel
        if channel.ended.is_set():
            self._remember_ended(execution_id)
        return channel

    def _remember_ended(self, execution_id: str) -> None:
        """Keep an ended execution in memory among the ``retain_ended`` most recent."""
        order = self._ended_order
        order[execution_id] = None
        order.move_to_end(execution_id)
        if self.retain_ended is None:
            return
        while len(order) > self.retain_ended:
            oldest, _ = order.popitem(last=False)
            channel = self._channels.get(oldest)
            if channel is None:
                continue
            idle = channel.ref is None or not channel.ref.is_alive
            if channel.ended.is_set() and idle and oldest not in self._watchers:
                del self._channels[oldest]

    def runs(self, execution_id: str) -> bool:
        """Whether the execution's actor runs in this runtime now."""
        channel = self._channels.get(execution_id)
        return channel is not None and channel.ref is not None and channel.ref.is_alive

    def last_seq(self, execution_id: str) -> int:
        """The sequence number of the execution's latest event this runtime knows (0 if it
        knows none): :meth:`follow` from there gives only what happens next."""
        channel = self._channels.get(execution_id)
        if channel is None or not channel.events:
            return 0
        return channel.events[-1].seq

    def handle(self, execution_id: str) -> ExecutionHandle:
        """The handle of an execution in memory (running, or among the recently ended).

        :raises ExecutionNotFoundError: if there is none with this id in memory; use
            :meth:`lookup` to read older ones back from the store.
        """
        self._channel(execution_id)
        return ExecutionHandle(self, execution_id)

    async def lookup(self, execution_id: str) -> ExecutionHandle:
        """The handle of any execution the store holds.

        :raises ExecutionNotFoundError: if there is none with this id.
        """
        await self._load(execution_id)
        return ExecutionHandle(self, execution_id)

    async def get_execution(self, execution_id: str) -> Execution | None:
        """The execution document as it is now (from memory if it is there), or None."""
        channel = self._channels.get(execution_id)
        here = channel is not None and (channel.ref is not None or channel.ended.is_set())
        if here and channel is not None and channel.execution is not None:
            return channel.execution  # it runs (or ran) here: memory is the truth
        return await self.store.get_execution(execution_id)

    async def follow(self, execution_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        """The events of an execution numbered above ``after_seq``, then live ones, until
        it ends (at once if it has ended).

        :raises ExecutionNotFoundError: if there is no such execution.
        """
        channel = await self._load(execution_id)
        polled = False
        while True:
            events = channel.events
            index = bisect.bisect_right(events, after_seq, key=_seq_of)
            while index < len(events):
                event = events[index]
                index += 1
                after_seq = event.seq
                yield event
            if channel.ended.is_set() and (not events or events[-1].seq <= after_seq):
                return
            if channel.ref is None and not channel.ended.is_set():
                # Not running in this process: poll the store for what others append (at
                # once the first time: it may have ended already).
                if polled:
                    await anyio.sleep(self.remote_poll or (0.2 if self.placement else 0.5))
                polled = True
                fresh = await self.store.events(execution_id, events[-1].seq if events else 0)
                if fresh:
                    tracker = channel.tracker
                    if tracker is None or tracker.last_seq != (events[-1].seq if events else 0):
                        tracker = channel.tracker = ExecutionFold()  # new, or events came
                        tracker.apply_all(events)  # from elsewhere meanwhile: start over
                    tracker.apply_all(fresh)
                    channel.events = events + fresh
                    channel.execution = tracker.execution
                    if type(channel.events[-1]) is ExecutionEnded:
                        channel.ended.set()
                    channel.wake()
                continue
            waiter = anyio.Event()
            channel.waiters.append(waiter)
            await waiter.wait()

    def on_execution_end(self, callback: Callable[[Execution], None]) -> None:
        """Call ``callback`` with the final document each time an execution ends here."""
        self._end_hooks.append(callback)

    async def quiesce(self, timeout: float) -> bool:  # noqa: ASYNC109 - a shared deadline
        """Stop starting work and wait up to ``timeout`` seconds for running attempts to end
        (their results are kept). Returns True if everything went quiet in time.

        What is left (attempts still running, task runs not started, timers) is picked up
        by recovery the next time a runtime opens the store. Used by a graceful stop.
        """
        waiting: list[_Flag] = []
        for channel in list(self._channels.values()):
            ref = channel.ref
            if ref is None or not ref.is_alive or channel.ended.is_set():
                continue
            if channel.quiet is None:
                channel.quiet = _Flag()
            waiting.append(channel.quiet)
            ref.tell_nowait(Quiesce())
        with anyio.move_on_after(timeout) as deadline:

            async def cut_short() -> None:
                await self._aborted.wait()
                deadline.cancel()

            async with anyio.create_task_group() as group:
                group.start_soon(cut_short)
                for flag in waiting:
                    await flag.wait()
                group.cancel_scope.cancel()
            await self.store.flush()
            return True
        return False

    def abort(self) -> None:
        """Cut a graceful stop short: quiescing ends at once and leaving the ``async with``
        block kills what runs (recovery resumes it at the next start)."""
        self._aborted.set()

    async def start(
        self,
        flow: Flow | str,
        inputs: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        validate_inputs: bool = True,
        strict_inputs: bool = False,
        trigger: dict[str, Any] | None = None,
        parent_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        execution_id: str | None = None,
    ) -> ExecutionHandle:
        """Start an execution of ``flow`` (a Flow or YAML text) and return its handle.

        :raises FlowValidationError: if ``flow`` is YAML text and invalid.
        :raises InputValidationError: if inputs are missing or of the wrong type.
        """
        if isinstance(flow, str):
            flow = parse_flow(flow)
        flow = await self.register_flow(flow)
        values = (
            resolve_inputs(flow.inputs, dict(inputs or {}), strict=strict_inputs)
            if validate_inputs
            else dict(inputs or {})
        )
        execution_id = execution_id or new_id()
        values = await self._upload_file_inputs(flow, execution_id, values)
        all_labels = dict(flow.labels)
        all_labels.update(labels or {})
        all_labels.setdefault("system.correlationId", execution_id)
        created = ExecutionCreated(
            execution_id=execution_id,
            seq=1,
            time=self.clock.utcnow(),
            namespace=flow.namespace,
            flow_id=flow.id,
            flow_revision=flow.revision or 1,
            inputs=values,
            labels=list(all_labels.items()),
            parent_id=parent_id,
            trigger=trigger,
            metadata=metadata
            or {
                "attemptNumber": 1,
                "originalCreatedDate": self.clock.utcnow().astimezone(UTC).isoformat(),
            },
        )
        placement = self.placement
        if placement is not None and not placement.runs_here:
            self.store.append(created)
            await self.store.flush()  # durable before an executor hears of it
            self._channels[execution_id] = _Channel.of_history(self.store, [created])
            await placement.announce(execution_id)
            return ExecutionHandle(self, execution_id)
        if placement is not None:
            await placement.claim_new(execution_id)
        channel = _Channel(self.store)
        self._channels[execution_id] = channel
        try:
            mode = await self._admit(flow, execution_id)
        except BaseException:
            del self._channels[execution_id]
            raise
        self._spawn(flow, created, channel, mode)
        await channel.started.wait()
        await self.store.flush()  # the execution is durable before anyone hears of it
        return ExecutionHandle(self, execution_id)

    async def _upload_file_inputs(
        self, flow: Flow, execution_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """FILE inputs given as local files go to internal storage; the value is the URI."""
        storage = storage_for(self.data_dir)
        for spec in flow.inputs:
            if not isinstance(spec, FileInput):
                continue
            value = values.get(spec.id)
            if isinstance(value, Path) or (
                isinstance(value, str) and not value.startswith("kestra://")
            ):
                path = Path(value)
                if not await anyio.Path(path).is_file():
                    raise InputValidationError(
                        [Problem(message=f"input {spec.id!r} (FILE): no file at {value}")]
                    )
                values[spec.id] = await storage.put_input_file(
                    flow.namespace, flow.id, execution_id, spec.id, path
                )
        return values

    async def delete_execution(self, execution_id: str) -> bool:
        """Delete a finished execution with its events, logs, metrics and files.

        :raises ExecutionError: if it is still running.
        """
        channel = self._channels.get(execution_id)
        if channel is not None and not channel.ended.is_set():
            raise ExecutionError(f"execution {execution_id} is still running; kill it first")
        execution = await self.store.get_execution(execution_id)
        if execution is None:
            return False
        deleted = await self.store.delete_execution(execution_id)
        storage_for(self.data_dir).delete_execution(
            execution.namespace, execution.flow_id, execution_id
        )
        self._channels.pop(execution_id, None)
        self._ended_order.pop(execution_id, None)
        if self.concurrency_gate is not None:
            await self.concurrency_gate.release(execution_id)  # a place it may have left
        return deleted

    async def purge(self, older_than: timedelta) -> int:
        """Delete every finished execution that ended more than ``older_than`` ago (and its
        files); return how many."""
        gone = await self.store.purge(self.clock.utcnow() - older_than)
        storage = storage_for(self.data_dir)
        for namespace, flow_id, execution_id in gone:
            storage.delete_execution(namespace, flow_id, execution_id)
            self._channels.pop(execution_id, None)
            self._ended_order.pop(execution_id, None)
        return len(gone)

    async def _admit(self, flow: Flow, execution_id: str) -> str | None:
        """The mode of a new execution as the gate decides it (None: no gate, or no limit
        on the flow; the runtime decides in memory)."""
        gate = self.concurrency_gate
        if gate is None or flow.concurrency is None:
            return None
        if await gate.admit(flow, execution_id):
            self._gated.add(execution_id)
            return "run"
        mode = _HELD_BACK[flow.concurrency.behavior]
        if mode == "queue":
            self._gated.add(execution_id)
        return mode

    async def _hold(self, flow: Flow, execution_id: str) -> None:
        """A restarted or replayed execution counts against its flow's limit in the gate."""
        gate = self.concurrency_gate
        if gate is None or flow.concurrency is None:
            return
        releasing = self._releasing.get(execution_id)
        if releasing is not None:
            await releasing.wait()  # its last end's release must not free this new slot
        await gate.hold(flow, execution_id)
        self._gated.add(execution_id)

    def _release_later(self, execution_id: str) -> None:
        """Give the gate back the slot (or the place in the queue) of an ended execution,
        once its end is durable (a crash before that finds it running, holding its slot)."""
        gate = self.concurrency_gate
        assert gate is not None
        done = self._releasing[execution_id] = anyio.Event()

        async def go() -> None:
            try:
                await self.store.flush()
                await gate.release(execution_id)
            except Exception:
                # the gate reconciles slots of ended executions on its own
                self.system.log.exception(
                    "could not release a concurrency slot", execution_id=execution_id
                )
            finally:
                if self._releasing.get(execution_id) is done:
                    del self._releasing[execution_id]
                done.set()
                self._follow_ups -= 1
                self._changed()

        try:
            self.system.spawn(lambda: _Once(go), name=f"release:{execution_id}")
        except ActorSystemClosedError:  # stopping: the gate reconciles it later
            del self._releasing[execution_id]
            return
        self._follow_ups += 1

    def grant(self, execution_id: str) -> bool:
        """The gate gave a QUEUED execution that runs here its slot: it starts. False if it
        does not run here (any more)."""
        channel = self._channels.get(execution_id)
        if channel is None or channel.ref is None or not channel.ref.is_alive:
            return False
        if channel.ended.is_set() or execution_id not in self._gated:
            return False
        execution = channel.execution
        if execution is not None:
            self._running[f"{execution.namespace}.{execution.flow_id}"].add(execution_id)
        channel.ref.tell_nowait(Dequeued())
        return True

    def _spawn(
        self, flow: Flow, created: ExecutionCreated, channel: _Channel, mode: str | None = None
    ) -> None:
        concurrency = flow.concurrency
        running = self._running[flow.uid]
        gated = mode is not None
        if mode is None:
            mode = "run"
            if concurrency is not None and len(running) >= concurrency.limit:
                mode = _HELD_BACK[concurrency.behavior]
        if mode == "run":
            running.add(created.execution_id)

        def on_end(execution: Execution) -> None:
            self._ended(flow, execution)

        actor = ExecutionActor(flow, self.services, channel, created, on_end=on_end, mode=mode)
        actor.channel = channel
        channel.ref = self.system.spawn(lambda: actor, name=f"execution:{created.execution_id}")
        if mode == "queue" and not gated:
            self._queued[flow.uid].append((flow, created))

    def _ended(self, flow: Flow, execution: Execution) -> None:
        channel = self._channels[execution.id]
        channel.execution = execution
        channel.ended.set()
        channel.wake()
        running = self._running[flow.uid]
        was_running = execution.id in running
        running.discard(execution.id)
        if was_running:
            self._dequeue(flow)
        if execution.id in self._gated:
            self._gated.discard(execution.id)
            self._release_later(execution.id)
        for parent_id, task_run_id in self._watchers.pop(execution.id, []):
            parent = self._channels.get(parent_id)
            if parent is not None and parent.ref is not None and parent.ref.is_alive:
                parent.ref.tell_nowait(ChildExecutionEnded(task_run_id, execution))
        if execution.state.current is State.RETRIED:
            self._retry_as_new_execution(flow, execution)
        self._remember_ended(execution.id)
        for hook in self._end_hooks:
            try:
                hook(execution)
            except Exception:
                self.system.log.exception("an execution end hook failed", execution_id=execution.id)
        self._changed()

    def _changed(self) -> None:
        settled, self._settled = self._settled, anyio.Event()
        settled.set()

    async def wait_idle(self) -> None:
        """Wait until every execution has ended and no follow-up (a retry) is pending."""
        while self._follow_ups or any(not c.ended.is_set() for c in self._channels.values()):
            await self._settled.wait()

    def _dequeue(self, flow: Flow) -> None:
        queue = self._queued[flow.uid]
        concurrency = flow.concurrency
        while queue and (concurrency is None or len(self._running[flow.uid]) < concurrency.limit):
            _, created = queue.popleft()
            channel = self._channels[created.execution_id]
            if channel.ref is None or not channel.ref.is_alive or channel.ended.is_set():
                continue  # gone, or killed while it waited
            self._running[flow.uid].add(created.execution_id)
            channel.ref.tell_nowait(Dequeued())

    def _retry_as_new_execution(self, flow: Flow, execution: Execution) -> None:
        retried = [t for t in execution.task_run_list if t.state.current is State.RETRIED]
        retry = retry_for_task_run(flow, execution, retried[0]) if retried else flow.retry
        attempt = int(execution.metadata.get("attemptNumber", 1))
        delay = backoff_of(retry).delay(attempt, self.system.random) if retry is not None else 0.0
        metadata = dict(execution.metadata)
        metadata["attemptNumber"] = int(metadata.get("attemptNumber", 1)) + 1
        labels = {label.key: label.value for label in execution.labels}
        labels.pop("system.correlationId", None)

        async def go() -> None:
            try:
                await self.clock.sleep(delay)
                await self.start(
                    flow,
                    execution.inputs,
                    labels=labels,
                    validate_inputs=False,
                    parent_id=execution.id,
                    metadata=metadata,
                )
            finally:
                self._follow_ups -= 1
                self._changed()

        self._follow_ups += 1
        self.system.spawn(lambda: _Once(go), name="retry-new-execution")

    async def _watch_child(self, child_id: str, parent_id: str, task_run_id: str) -> None:
        """Tell ``parent_id`` when its subflow ``child_id`` ends (at once if it has)."""
        channel = self._channels.get(child_id)
        ended: Execution | None = None
        if channel is not None:
            if channel.ended.is_set():
                ended = channel.execution
            else:
                self._watchers[child_id].append((parent_id, task_run_id))
                return
        else:
            ended = await self.store.get_execution(child_id)
            if ended is not None and not ended.state.current.terminal:
                self._watchers[child_id].append((parent_id, task_run_id))
                if self.placement is not None:
                    # the child may run on another executor: its end is only in the store
                    self.system.spawn(
                        lambda: _Once(lambda: self._poll_child(child_id)),
                        name=f"watch:{child_id}",
                    )
                return
        parent = self._channels.get(parent_id)
        if ended is not None and parent is not None and parent.ref is not None:
            parent.ref.tell_nowait(ChildExecutionEnded(task_run_id, ended))

    async def _poll_child(self, child_id: str, interval: float = 0.25) -> None:
        """Wait (polling the store) for a subflow running elsewhere to end; tell its parents."""
        while child_id in self._watchers:
            execution = await self.store.get_execution(child_id)
            if execution is not None and execution.state.current.terminal:
                local = self._channels.get(child_id)
                if local is not None and local.ref is not None and local.ref.is_alive:
                    return  # it runs here now: its end reaches the watchers directly
                for parent_id, task_run_id in self._watchers.pop(child_id, []):
                    parent = self._channels.get(parent_id)
                    if parent is not None and parent.ref is not None and parent.ref.is_alive:
                        parent.ref.tell_nowait(ChildExecutionEnded(task_run_id, execution))
                return
            await anyio.sleep(interval)

    async def _start_child(
        self,
        parent: Execution,
        task_run_id: str,
        namespace: str,
        flow_id: str,
        revision: int | None,
        inputs: dict[str, Any],
        labels: list[tuple[str, str]],
        wait: bool,
    ) -> str:
        flow = self.flows.get(namespace, flow_id, revision)
        if flow is None:
            raise ExecutionError(f"no flow {namespace}.{flow_id} to start as a subflow")
        child_labels = dict(flow.labels)
        child_labels.update(dict(labels))
        trigger = {
            "id": task_run_id,
            "type": "io.kestra.plugin.core.flow.Subflow",
            "variables": {
                "executionId": parent.id,
                "namespace": parent.namespace,
                "flowId": parent.flow_id,
                "flowRevision": parent.flow_revision,
            },
        }
        handle = await self.start(flow, inputs, labels=child_labels, trigger=trigger)
        if wait:
            channel = self._channels[handle.id]
            if channel.ended.is_set() and channel.execution is not None:
                parent_channel = self._channels[parent.id]
                assert parent_channel.ref is not None
                parent_channel.ref.tell_nowait(ChildExecutionEnded(task_run_id, channel.execution))
            else:
                self._watchers[handle.id].append((parent.id, task_run_id))
        return handle.id

    # -- commands -----------------------------------------------------------------------

    def _forwarded(self, channel: _Channel, execution_id: str) -> Placement | None:
        """The placement to forward a command to, when the execution does not run here."""
        placement = self.placement
        if placement is None or execution_id in self._applying:
            return None
        if channel.ref is not None and channel.ref.is_alive:
            return None
        return placement

    @contextlib.contextmanager
    def applying(self, execution_id: str) -> Iterator[None]:
        """Within the block, commands to ``execution_id`` run here (an executor applying a
        command it took from another node), not forwarded again."""
        self._applying.add(execution_id)
        try:
            yield
        finally:
            self._applying.discard(execution_id)

    async def _command(self, execution_id: str, command: object) -> CommandResult:
        channel = await self._load(execution_id)
        placement = self._forwarded(channel, execution_id)
        if placement is not None:
            actions: dict[type, str] = {Kill: "kill", Pause: "pause", Resume: "resume"}
            action = actions[type(command)]
            inputs = command.inputs if isinstance(command, Resume) else {}
            await placement.forward(execution_id, action, {"inputs": inputs})
            await self._refresh(channel, execution_id)
            return CommandResult(True)
        ref = channel.ref
        if ref is None or not ref.is_alive:
            state = channel.execution.state.current.value if channel.execution else "unknown"
            raise ExecutionError(f"execution {execution_id} is {state}; it takes no commands")
        try:
            result: CommandResult = await ref.ask(command)
        except ActorDeadError:
            state = channel.execution.state.current.value if channel.execution else "unknown"
            raise ExecutionError(
                f"execution {execution_id} is {state}; it takes no commands"
            ) from None
        if not result.ok:
            raise ExecutionError(result.message)
        await self.store.flush()
        return result

    async def resume(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> None:
        """Resume a paused execution, with the paused Pause tasks' ``onResume`` inputs.

        :raises InputValidationError: if the inputs do not fit ``onResume`` (nothing resumes).
        :raises ExecutionError: if the execution is not paused.
        """
        channel = await self._load(execution_id)
        execution = channel.execution
        values = dict(inputs or {})
        if execution is not None:
            flow = await self._flow_for(
                execution.namespace, execution.flow_id, execution.flow_revision
            )
            for task_run in execution.task_run_list:
                if task_run.state.current is not State.PAUSED or flow is None:
                    continue
                task = flow.find_task(task_run.task_id)
                if isinstance(task, PauseTask) and task.on_resume:
                    resolve_inputs(task.on_resume, values)  # raises, naming each input
        await self._command(execution_id, Resume(values))

    async def kill(self, execution_id: str) -> None:
        """Kill an execution (and the subflow executions it waits for)."""
        await self._command(execution_id, Kill())

    async def pause(self, execution_id: str) -> None:
        """Pause a running execution: running task runs finish, nothing new starts."""
        await self._command(execution_id, Pause())

    async def restart(self, execution_id: str) -> Execution:
        """Restart an execution in place: failed task runs run again, with new attempts.

        Returns the execution as the restart left it (RESTARTED), before it runs on.

        :raises ExecutionError: if it cannot be restarted in its current state.
        """
        channel = await self._load(execution_id)
        placement = self._forwarded(channel, execution_id)
        if placement is not None:
            return await self._forward_for_document(placement, channel, execution_id, "restart")
        if not channel.ended.is_set():
            result = await self._command(execution_id, Restart())
            assert result.snapshot is not None
            return result.snapshot
        return await self._restart_ended(channel, execution_id, None)

    async def set_task_run_state(
        self, execution_id: str, task_run_id: str, state: State
    ) -> Execution:
        """Change the state of a task run of a finished execution by hand (Kestra's "change
        state"); the execution restarts and re-decides from there.

        Returns the execution as the change left it (RESTARTED), before it runs on.

        :raises ExecutionError: if the execution is running, the task run unknown or not
            finished, or ``state`` is not SUCCESS, WARNING, FAILED or KILLED.
        """
        if state not in (State.SUCCESS, State.WARNING, State.FAILED, State.KILLED):
            raise ExecutionError(
                f"a task run can be set to SUCCESS, WARNING, FAILED or KILLED, not {state.value}"
            )
        channel = await self._load(execution_id)
        placement = self._forwarded(channel, execution_id)
        if placement is not None:
            return await self._forward_for_document(
                placement, channel, execution_id, "mark", task_run_id=task_run_id, state=state
            )
        if not channel.ended.is_set():
            current = channel.execution.state.current.value if channel.execution else "unknown"
            raise ExecutionError(
                f"only a finished execution's task runs can change state; {execution_id} is "
                f"{current}"
            )
        return await self._restart_ended(channel, execution_id, (task_run_id, state))

    async def change_status(self, execution_id: str, state: State) -> Execution:
        """Change the final state of a finished execution by hand (Kestra's "change status").

        Nothing runs again; the change is an event like any other, so it is in the history.

        :raises ExecutionError: if the execution is not finished or ``state`` is not final.
        """
        if not state.terminal:
            raise ExecutionError(
                f"an execution can only be set to a final state, not {state.value}"
            )
        channel = await self._load(execution_id)
        execution = channel.execution
        if (
            execution is None
            or not channel.ended.is_set()
            or (channel.ref is not None and channel.ref.is_alive)
        ):
            current = execution.state.current.value if execution else "unknown"
            raise ExecutionError(
                f"only a finished execution can change status; {execution_id} is {current}"
            )
        event = ExecutionEnded(
            execution_id=execution_id,
            seq=channel.events[-1].seq + 1,
            time=self.clock.utcnow(),
            state=state,
            outputs=execution.outputs,
        )
        folding = ExecutionFold.load(execution, channel.events[-1].seq)
        folding.apply(event)
        changed = folding.execution
        assert changed is not None
        channel.execution = changed
        channel.publish(event)
        await self.store.flush()
        return changed

    async def _forward_for_document(
        self,
        placement: Placement,
        channel: _Channel,
        execution_id: str,
        action: str,
        **payload: Any,
    ) -> Execution:
        snapshot = await placement.forward(execution_id, action, payload)
        await self._refresh(channel, execution_id)
        if snapshot is None:
            raise ExecutionError(f"execution {execution_id}: no document came back")
        return snapshot

    async def _refresh(self, channel: _Channel, execution_id: str) -> None:
        """Read an execution running elsewhere back from the store (after a command)."""
        events = await self.store.events(
            execution_id, channel.events[-1].seq if channel.events else 0
        )
        if events:
            channel.events.extend(events)
            channel.execution = fold(channel.events)
        if channel.execution is not None and channel.execution.state.current.terminal:
            channel.ended.set()
        else:
            channel.ended = _Flag()
        channel.wake()

    async def _restart_ended(
        self, channel: _Channel, execution_id: str, mark: tuple[str, State] | None
    ) -> Execution:
        if channel.ref is not None:
            await channel.ref.join()
        execution = channel.execution
        if execution is None:
            raise ExecutionError(f"execution {execution_id} has not started")
        flow = await self._flow_for(execution.namespace, execution.flow_id, execution.flow_revision)
        if flow is None:
            raise ExecutionError(f"flow {execution.namespace}.{execution.flow_id} is unknown")
        if mark is None and execution.state.current not in RESTARTABLE:
            raise ExecutionError(
                f"only a FAILED, KILLED or WARNING execution can be restarted, "
                f"not {execution.state.current.value}"
            )
        await self._hold(flow, execution_id)  # before it runs: its end releases the slot
        ended = channel.ended
        channel.ended = _Flag()
        self._ended_order.pop(execution_id, None)
        self._running[flow.uid].add(execution_id)

        def on_end(done: Execution) -> None:
            self._ended(flow, done)

        actor = ExecutionActor(
            flow, self.services, channel, history=list(channel.events), on_end=on_end,
            restart=True, mark=mark,
        )  # fmt: skip
        actor.channel = channel
        channel.started = _Flag()
        channel.ref = self.system.spawn(lambda: actor, name=f"execution:{execution_id}")
        await channel.started.wait()
        if actor.restart_result is None or not actor.restart_result.ok:
            self._running[flow.uid].discard(execution_id)
            if execution_id in self._gated:
                self._gated.discard(execution_id)
                self._release_later(execution_id)
            channel.ended = ended
            self._remember_ended(execution_id)
            reason = actor.restart_result.message if actor.restart_result else "not restarted"
            raise ExecutionError(reason)
        await self.store.flush()
        assert actor.restart_result.snapshot is not None
        return actor.restart_result.snapshot

    async def replay(self, execution_id: str, task_run_id: str) -> ExecutionHandle:
        """A new execution (``parentId`` = this one) that re-runs from ``task_run_id`` on.

        Task runs before it are copied with their outputs; it and its parents run again.

        :raises ExecutionError: if the execution is still running or has no such task run.
        """
        channel = await self._load(execution_id)
        placement = self._forwarded(channel, execution_id)
        if placement is not None:
            snapshot = await placement.forward(execution_id, "replay", {"task_run_id": task_run_id})
            assert snapshot is not None
            await self._load(snapshot.id)
            return ExecutionHandle(self, snapshot.id, snapshot=snapshot)
        execution = channel.execution
        if execution is None or not execution.state.current.terminal:
            raise ExecutionError(f"execution {execution_id} must have ended to be replayed")
        flow = await self._flow_for(execution.namespace, execution.flow_id, execution.flow_revision)
        if flow is None:
            raise ExecutionError(f"flow {execution.namespace}.{execution.flow_id} is unknown")
        new_id_ = new_id()
        try:
            history = replay_history(execution, task_run_id, new_id_, self.clock.utcnow())
        except KeyError:
            raise ExecutionError(
                f"execution {execution_id} has no task run {task_run_id}"
            ) from None
        await self._hold(flow, new_id_)
        replayed = _Channel(self.store)
        self._channels[new_id_] = replayed
        for event in history:
            replayed.publish(event)
        self._running[flow.uid].add(new_id_)

        def on_end(done: Execution) -> None:
            self._ended(flow, done)

        actor = ExecutionActor(
            flow, self.services, replayed, history=history, on_end=on_end, mode="replay"
        )
        actor.channel = replayed
        replayed.ref = self.system.spawn(lambda: actor, name=f"execution:{new_id_}")
        await replayed.started.wait()
        return ExecutionHandle(self, new_id_, snapshot=fold(history))

    def executions(self) -> list[Execution]:
        """Every execution this runtime knows, in the order they were started."""
        return [c.execution for c in self._channels.values() if c.execution is not None]

    def events_of(self, execution_id: str) -> list[Event]:
        """Every event of an execution so far.

        :raises ExecutionNotFoundError: if there is no such execution.
        """
        return list(self._channel(execution_id).events)

    async def run(
        self, flow: Flow | str, inputs: Mapping[str, Any] | None = None, **options: Any
    ) -> Execution:
        """Start an execution and wait for its end."""
        handle = await self.start(flow, inputs, **options)
        return await handle.result()


def _seq_of(event: Event) -> int:
    return event.seq


class _Once(Actor[object]):
    """Runs one coroutine function, then stops (follow-up work started from a callback)."""

    def __init__(self, func: Callable[[], Awaitable[None]]) -> None:
        self.func = func

    async def on_start(self) -> None:
        await self.func()
        self.stop_self()
