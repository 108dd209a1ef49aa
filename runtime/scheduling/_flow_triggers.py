"""Flow triggers: start a flow when executions of other flows end."""

from __future__ import annotations

import functools
import math
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog
from anyio.abc import TaskStatus

from runtime.engine._variables import execution_variables
from runtime.errors import TiercelError
from runtime.expressions import ExpressionError
from runtime.model import Flow, FlowTrigger
from runtime.model._execution import Execution
from runtime.model._triggers import (
    MultipleConditionSpec,
    Preconditions,
    TimeWindow,
    WindowType,
)
from runtime.scheduling._conditions import (
    ConditionContext,
    ConditionError,
    all_hold,
    filter_holds,
    holds,
    upstream_flow_holds,
)
from runtime.scheduling._ids import flow_trigger_execution_id, instant_text

if TYPE_CHECKING:
    from runtime.engine import Runtime

FLOW_TRIGGERS_NAMESPACE = "_tiercel.flow_triggers"
"""The key-value namespace of the checkpoint and of the precondition windows."""

CHECKPOINT_KEY = "checkpoint"

_RECENT = 50_000
"""Ends remembered in memory, so that one seen twice (live and by the catch-up, or by two
reads of the store that overlap) is done once."""

_LAG_READ_EVERY = 10.0
"""Seconds between two reads of the whole ``lag`` window when following the store."""

_APPLIED_KEPT = 1000
"""Ends remembered in a window document, so that replaying one (the catch-up after a
restart reads the last ``catch_up_margin`` again) has no effect."""

log = structlog.get_logger("tiercel.flow_triggers")


class _Window(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """The state of one precondition window: which named conditions were met, by whom."""

    start: datetime | None = None
    end: datetime | None = None
    results: dict[str, _Result] = msgspec.field(default_factory=dict)
    applied: list[str] = msgspec.field(default_factory=list)
    """The ends (``id@end date``) that met one of its conditions, newest last."""
    completed_by: list[str] = msgspec.field(default_factory=list)
    """The ends that met its last condition."""


class _Result(msgspec.Struct, kw_only=True, rename="camel"):
    execution_id: str
    at: datetime


class FlowTriggers:
    """Starts the flows whose Flow triggers match each execution that ends.

    ``await tg.start(flow_triggers.run)``: it catches up on executions that ended since
    its checkpoint (while it was not running), then follows executions as they end in
    this runtime, in order.

    Semantics, as Kestra's: a trigger matches an ending execution of another flow (a
    flow never triggers itself) whose state is in ``states`` (any final state by
    default) and for which every condition holds; ``preconditions`` (and the older
    ``MultipleCondition``) must have been met by executions ending within their time
    window. Windows are evaluated at each execution's end date, so a catch-up after a
    stop gives the same result as live processing. The trigger's ``inputs`` are rendered
    with ``trigger.outputs`` (the ending execution's outputs); ``trigger`` has
    ``executionId``, ``namespace``, ``flowId``, ``flowRevision`` and ``state``.

    At least once, never twice: the started execution's id derives from the ending
    execution (and its end date) and the trigger, and is looked up before starting. A
    checkpoint (the latest end date processed) and the windows are kept in the store's
    key-value documents (``_tiercel.flow_triggers``); the catch-up reads executions that
    ended after the checkpoint minus ``catch_up_margin`` (replaying one has no effect).

    With ``poll_interval``, ends are read from the store instead, every ``poll_interval``
    seconds: in a cluster, executions end on every executor, and one node at a time runs
    the Flow triggers. Each read starts
    ``lag`` before the latest end processed, so an end stored that much after its end date
    (a slow commit, clocks of two machines apart) is still seen.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        catch_up_margin: timedelta = timedelta(minutes=1),
        page_size: int = 100,
        poll_interval: float | None = None,
        lag: timedelta = timedelta(seconds=30),
        refresh_flows: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.catch_up_margin = catch_up_margin
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.lag = lag
        self.refresh_flows = refresh_flows
        """Called before each read of the store's ends: a cluster node brings its flows up
        to date, so that a flow saved (on any node) before an end is evaluated for it."""
        self._queue: deque[Execution] = deque()
        self._wake = anyio.Event()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._checkpoint: datetime | None = None
        self._running = False
        self._busy = False
        self._hooked = False
        self._idle_changed = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load the checkpoint, report started, catch up, then follow ends until cancelled.

        :raises RuntimeError: if it is already running.
        """
        if self._running:
            raise RuntimeError("these FlowTriggers are already running")
        if not self._hooked:
            self.runtime.on_execution_end(self._ended)
            self._hooked = True
        self._queue.clear()
        self._running = self._busy = True  # ends are queued from now on
        try:
            checkpoint = await self._load_checkpoint()
            task_status.started()
            if checkpoint is None:
                await self._save_checkpoint(self.runtime.clock.utcnow())
            else:
                self._checkpoint = checkpoint
                await self._catch_up(checkpoint - self.catch_up_margin, announce=True)
            if self.poll_interval is not None:
                await self._follow_store(self.poll_interval)
            while True:
                while self._queue:
                    await self._process(self._queue.popleft())
                    if not self._queue and self._checkpoint is not None:
                        await self._save_checkpoint(self._checkpoint)
                self._wake = anyio.Event()
                if self._queue:
                    continue
                self._set_busy(False)
                await self._wake.wait()
                self._set_busy(True)
        finally:
            self._running = False
            self._set_busy(False)

    async def wait_idle(self) -> None:
        """Return once every end seen so far has been processed (at once when not running)."""
        while self._running and (self._busy or self._queue):
            await self._idle_changed.wait()

    # -- following ends -------------------------------------------------------------------

    def _ended(self, execution: Execution) -> None:
        if self._running and self.poll_interval is None:  # else the store is read
            self._queue.append(execution)
            self._wake.set()

    async def _follow_store(self, interval: float) -> None:
        """Read the ends from the store every ``interval`` seconds: from the last one read,
        and every ``_LAG_READ_EVERY`` seconds from ``lag`` before the checkpoint (an end
        stored late, with an end date before the last one read, is seen then), so a busy
        cluster's leader does not read its whole lag window at every poll."""
        position: tuple[datetime, str] | None = None
        wide_read_at = -math.inf
        while True:
            self._wake = anyio.Event()
            if self.refresh_flows is not None:
                try:
                    await self.refresh_flows()
                except TiercelError as exc:
                    log.warning("cannot refresh the flows; using those known", error=str(exc))
            now = anyio.current_time()
            if position is None or now - wide_read_at >= _LAG_READ_EVERY:
                wide_read_at = now
                checkpoint = self._checkpoint or self.runtime.clock.utcnow()
                last = await self._catch_up(checkpoint - self.lag)
            else:
                last = await self._catch_up(position[0], after_id=position[1])
            if last is not None and (position is None or last > position):
                position = last
            self._set_busy(False)
            with anyio.move_on_after(interval):
                await self._wake.wait()
            self._set_busy(True)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        changed, self._idle_changed = self._idle_changed, anyio.Event()
        changed.set()

    async def _load_checkpoint(self) -> datetime | None:
        now = self.runtime.clock.utcnow()
        stored = await self.runtime.store.kv_get(FLOW_TRIGGERS_NAMESPACE, CHECKPOINT_KEY, now)
        if not isinstance(stored, dict) or "endedAfter" not in stored:
            return None
        return msgspec.convert(stored["endedAfter"], datetime)

    async def _save_checkpoint(self, checkpoint: datetime) -> None:
        self._checkpoint = checkpoint
        value = {"endedAfter": instant_text(checkpoint)}
        await self.runtime.store.kv_put(FLOW_TRIGGERS_NAMESPACE, CHECKPOINT_KEY, value, None)
        await self.runtime.store.flush()

    async def _catch_up(
        self, since: datetime, *, after_id: str = "", announce: bool = False
    ) -> tuple[datetime, str] | None:
        """Process the executions that ended after ``(since, after_id)`` and are not done
        yet, oldest end first (a cursor over the store's ends, a page at a time); return
        the last end read (end date, execution id), if any."""
        after = since
        last: tuple[datetime, str] | None = None
        checkpoint = self._checkpoint
        any_trigger = self._any_trigger()
        done = 0
        while True:
            ends = await self.runtime.store.ended_since(after, after_id, self.page_size)
            for execution_id, ended in ends:
                marker = f"{execution_id}@{instant_text(ended)}"
                if marker in self._recent:
                    continue
                if not any_trigger:  # nothing to evaluate: no document to read
                    self._done(marker, ended)
                    continue
                execution = await self.runtime.get_execution(execution_id)
                if execution is not None and execution.state.current.terminal:
                    if announce and not done:
                        log.info("catching up on executions that ended while stopped")
                    await self._process(execution)
                    done += 1
            if ends:
                after_id, after = ends[-1]
                last = (after, after_id)
            if len(ends) < self.page_size:
                break
        if self._checkpoint is not None and self._checkpoint != checkpoint:
            await self._save_checkpoint(self._checkpoint)
        return last

    async def _process(self, execution: Execution) -> None:
        """Evaluate every Flow trigger of every other flow against an ended execution."""
        ended = execution.state.end_date or self.runtime.clock.utcnow()
        marker = f"{execution.id}@{instant_text(ended)}"
        if marker in self._recent:
            return
        for flow in self.runtime.flows.all():
            if flow.disabled or (flow.namespace, flow.id) == (
                execution.namespace,
                execution.flow_id,
            ):
                continue  # Kestra never lets a flow trigger itself
            for trigger in flow.triggers:
                if isinstance(trigger, FlowTrigger) and not trigger.disabled:
                    await self._evaluate(flow, trigger, execution, ended, marker)
        self._done(marker, ended)

    def _any_trigger(self) -> bool:
        return any(
            isinstance(trigger, FlowTrigger) and not trigger.disabled
            for flow in self.runtime.flows.all()
            if not flow.disabled
            for trigger in flow.triggers
        )

    def _done(self, marker: str, ended: datetime) -> None:
        self._recent[marker] = None
        while len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        if self._checkpoint is None or ended > self._checkpoint:
            self._checkpoint = ended

    # -- one trigger, one end -------------------------------------------------------------

    async def _evaluate(
        self, flow: Flow, trigger: FlowTrigger, execution: Execution, ended: datetime, marker: str
    ) -> None:
        if execution.state.current not in trigger.end_states():
            return
        logger = log.bind(
            namespace=flow.namespace,
            flow_id=flow.id,
            trigger_id=trigger.id,
            execution_id=execution.id,
        )
        variables = {
            "executionId": execution.id,
            "namespace": execution.namespace,
            "flowId": execution.flow_id,
            "flowRevision": execution.flow_revision,
            "state": execution.state.current.value,
        }
        context = ConditionContext(
            self.runtime.expressions, self._render_context(flow, execution, variables), execution
        )
        simple = [c for c in trigger.conditions if not isinstance(c, MultipleConditionSpec)]
        try:
            if not all_hold(simple, context):
                return
        except ConditionError as exc:
            logger.warning(
                "a condition cannot be evaluated: the trigger does not fire", error=str(exc)
            )
            return
        windows: list[MultipleConditionSpec | Preconditions] = [
            c for c in trigger.conditions if isinstance(c, MultipleConditionSpec)
        ]
        if trigger.preconditions is not None:
            windows.append(trigger.preconditions)
        met = True
        for spec in windows:
            met = await self._window(flow, trigger, spec, context, ended, marker, logger) and met
        if met:
            await self._start(flow, trigger, execution, ended, variables, context, logger)

    async def _start(
        self,
        flow: Flow,
        trigger: FlowTrigger,
        execution: Execution,
        ended: datetime,
        variables: dict[str, Any],
        context: ConditionContext,
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        execution_id = flow_trigger_execution_id(
            execution.id, ended, flow.namespace, flow.id, trigger.id
        )
        if await self.runtime.get_execution(execution_id) is not None:
            return  # started before a crash, or by a replayed end
        try:
            inputs = self.runtime.expressions.render_value(trigger.inputs or {}, context.variables)
        except ExpressionError as exc:
            logger.warning("the trigger's inputs cannot be rendered: not started", error=str(exc))
            return
        try:
            await self.runtime.start(
                flow,
                inputs,
                labels=trigger.label_map(),
                trigger={"id": trigger.id, "type": trigger.type, "variables": variables},
                execution_id=execution_id,
            )
        except TiercelError as exc:
            logger.error("the triggered execution could not start", error=str(exc))  # noqa: TRY400
        except Exception:
            logger.exception("the triggered execution could not start")
        else:
            logger.info("started a flow-triggered execution", started=execution_id)

    def _render_context(
        self, flow: Flow, execution: Execution, variables: dict[str, Any]
    ) -> dict[str, Any]:
        trigger = dict(variables)
        if execution.outputs:
            trigger["outputs"] = execution.outputs
        return {
            "trigger": trigger,
            "execution": execution_variables(execution),
            "labels": {label.key: label.value for label in execution.labels},
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision or 1},
            "envs": dict(self.runtime.services.envs),
        }

    # -- precondition windows -------------------------------------------------------------

    async def _window(
        self,
        flow: Flow,
        trigger: FlowTrigger,
        spec: MultipleConditionSpec | Preconditions,
        context: ConditionContext,
        ended: datetime,
        marker: str,
        logger: structlog.typing.FilteringBoundLogger,
    ) -> bool:
        """Record what the ending execution meets in the window of ``spec``; whether every
        condition of the window is now met."""
        store = self.runtime.store
        key = f"{flow.namespace}/{flow.id}/{trigger.id}/{spec.id}"
        stored = await store.kv_get(FLOW_TRIGGERS_NAMESPACE, key, self.runtime.clock.utcnow())
        window = msgspec.convert(stored, _Window) if stored is not None else _Window()
        if marker in window.completed_by:
            return True  # a replay of the end that completed it: its start is found started
        if marker in window.applied:
            return False  # a replay: what it met is counted already (or was reset since)
        time_window = (
            spec.effective_window() if isinstance(spec, MultipleConditionSpec) else spec.time_window
        )
        current = _place(window, time_window, ended)
        if current is None:
            return False
        execution = context.execution
        assert execution is not None
        checks = _named_checks(spec, context, logger)
        matched = [name for name, check in checks.items() if check()]
        for name in matched:
            current.results[name] = _Result(execution_id=execution.id, at=ended)
        if matched:
            current.applied = [*current.applied, marker][-_APPLIED_KEPT:]
        # Only an end that meets one of the conditions can complete the window.
        met = bool(matched) and all(name in current.results for name in checks)
        if met:
            current.completed_by = [*current.completed_by, marker][-_APPLIED_KEPT:]
            if spec.reset_on_success:
                current.results = {}
        if matched or current is not window:
            value = msgspec.to_builtins(current)
            await store.kv_put(FLOW_TRIGGERS_NAMESPACE, key, value, None)
        return met


def _named_checks(
    spec: MultipleConditionSpec | Preconditions,
    context: ConditionContext,
    logger: structlog.typing.FilteringBoundLogger,
) -> dict[str, Callable[[], bool]]:
    """The window's conditions by name (Kestra's names), each a test of the ending
    execution; one that cannot be evaluated is logged and false."""
    execution = context.execution
    assert execution is not None

    def guarded(test: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:
            try:
                return test()
            except ConditionError as exc:
                logger.warning("a precondition cannot be evaluated", error=str(exc))
                return False

        return check

    if isinstance(spec, MultipleConditionSpec):
        return {
            name: guarded(functools.partial(holds, condition, context))
            for name, condition in spec.conditions.items()
        }
    checks: dict[str, Callable[[], bool]] = {}
    number = 0
    for upstream in spec.flows or ():
        number += 1
        checks[f"condition_{number}"] = guarded(
            functools.partial(upstream_flow_holds, upstream, execution)
        )
    for entry in spec.where or ():
        number += 1
        checks[f"condition_{number}_{entry.id}"] = guarded(
            functools.partial(filter_holds, entry, context)
        )
    return checks


def _place(window: _Window, spec: TimeWindow, at: datetime) -> _Window | None:
    """The window an end at ``at`` counts in: ``window`` itself when ``at`` falls in it,
    else a new one (keeping what completed the old); None when ``at`` counts in none (a
    daily window it is outside of, or a window older than the current one)."""
    at = at.astimezone(UTC)
    if spec.type is WindowType.SLIDING_WINDOW:
        length = spec.window or timedelta(days=1)
        kept = {n: r for n, r in window.results.items() if at - length < r.at <= at}
        if kept != window.results:
            return _Window(results=kept, applied=window.applied, completed_by=window.completed_by)
        return window
    bounds = _bounds(spec, at)
    if bounds is None:
        return None
    start, end = bounds
    if window.start is not None and window.end is not None:
        if window.start <= at < window.end:
            return window
        if at < window.start:
            return None
    return _Window(start=start, end=end, applied=window.applied, completed_by=window.completed_by)


def _bounds(spec: TimeWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The fixed window (start, end) that contains ``at``, or None when ``at`` is
    outside the day's window."""
    midnight = datetime.combine(at.date(), time(), tzinfo=UTC)
    if spec.type is WindowType.DAILY_TIME_DEADLINE:
        assert spec.deadline is not None
        start, end = midnight, midnight + _since_midnight(spec.deadline)
    elif spec.type is WindowType.DAILY_TIME_WINDOW:
        assert spec.start_time is not None
        assert spec.end_time is not None
        start = midnight + _since_midnight(spec.start_time)
        end = midnight + _since_midnight(spec.end_time)
    else:
        length = spec.window or timedelta(days=1)
        anchor = midnight + (spec.window_advance or timedelta())
        if length >= timedelta(days=1):
            start = anchor if anchor <= at else anchor - timedelta(days=1)
            while start > at:
                start -= timedelta(days=1)
        else:
            start = anchor + ((at - anchor) // length) * length
        end = start + length
    return (start, end) if start <= at < end else None


def _since_midnight(value: time) -> timedelta:
    return timedelta(hours=value.hour, minutes=value.minute, seconds=value.second)
