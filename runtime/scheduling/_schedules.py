"""The Scheduler: starts the executions of Schedule triggers at their dates, durably."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import msgspec
import structlog
from anyio.abc import TaskStatus

from runtime.errors import TiercelError
from runtime.expressions import ExpressionError
from runtime.model import Flow, ScheduleTrigger
from runtime.model._execution import Execution
from runtime.model._triggers import MissedSchedules, label_map
from runtime.scheduling._conditions import ConditionContext, ConditionError, all_hold
from runtime.scheduling._cron import Cron, CronError
from runtime.scheduling._ids import schedule_execution_id

if TYPE_CHECKING:
    from runtime.engine import Runtime

TRIGGERS_NAMESPACE = "_tiercel.triggers"
"""The key-value namespace of the Scheduler's state (one document per trigger)."""

MAX_SLEEP = 300.0
"""Longest wait between two looks at the wall clock (it may be changed under us)."""

_COUNT_LIMIT = 100_000
"""Skipped dates are counted (for the log) up to this many."""

_SEARCH_LIMIT = 1000
"""Dates examined, at most, for the next or previous date whose conditions hold."""

_MICROSECOND = timedelta(microseconds=1)
_EARLIEST = datetime.min.replace(tzinfo=UTC)

log = structlog.get_logger("tiercel.scheduler")


@dataclass(frozen=True, order=True)
class TriggerKey:
    """Names a trigger: its flow's namespace and id, and its own id."""

    namespace: str
    flow_id: str
    trigger_id: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.flow_id}/{self.trigger_id}"


class TriggerState(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """What the Scheduler keeps of a trigger, in the store (``TRIGGERS_NAMESPACE``)."""

    last: datetime | None = None
    """The last date handled: fired, or skipped on purpose. Later dates are still to do."""
    disabled: bool = False
    """Seen disabled: when enabled again, the trigger starts from that moment."""
    stopped: str | None = None
    """The state of the execution that stopped the trigger (``stopAfter``)."""
    backfill_until: datetime | None = None
    """A backfill in progress: dates up to this one are fired whatever the policy..."""
    backfill_resume: datetime | None = None
    """...and the regular schedule resumes after this one (when the trigger was seen)."""


@dataclass
class _Entry:
    key: TriggerKey
    flow: Flow
    trigger: ScheduleTrigger
    cron: Cron | None
    active: bool = False
    after: datetime = field(default_factory=lambda: _EARLIEST)
    """The last date handled (saved as ``last``)."""
    pending: deque[datetime] = field(default_factory=deque)
    """Dates to fire before the regular schedule: missed ones, a backfill."""
    resume: datetime = field(default_factory=lambda: _EARLIEST)
    """Once ``pending`` is done, the regular schedule continues after this date."""
    backfill_until: datetime | None = None
    backfill_resume: datetime | None = None
    stopped: str | None = None
    next_base: datetime | None = None
    next: datetime | None = None

    def due(self) -> datetime | None:
        """The next date to handle, or None (inactive, stopped, or never again)."""
        if not self.active or self.stopped is not None or self.cron is None:
            return None
        if self.pending:
            return self.pending[0]
        base = max(self.after, self.resume)
        if self.next_base != base:
            self.next_base, self.next = base, self.cron.next_after(base)
        return self.next

    def state(self) -> TriggerState:
        backfill = self.backfill_resume is not None and self.after < self.backfill_resume
        return TriggerState(
            last=self.after,
            stopped=self.stopped,
            backfill_until=self.backfill_until if backfill else None,
            backfill_resume=self.backfill_resume if backfill else None,
        )

    def show(self, instant: datetime) -> str:
        """``instant`` as Kestra prints trigger dates: ISO-8601 in the trigger's zone."""
        zoned = self.cron.local(instant) if self.cron is not None else instant
        return java_iso(zoned)

    def logger(self) -> structlog.typing.FilteringBoundLogger:
        return log.bind(  # type: ignore[no-any-return]
            namespace=self.key.namespace,
            flow_id=self.key.flow_id,
            trigger_id=self.key.trigger_id,
        )


class Scheduler:
    """Starts an execution at each date of each Schedule trigger of ``runtime``'s flows.

    Run it in a task group (``await tg.start(scheduler.run)``) and call
    :meth:`flows_changed` whenever flows are added, changed or deleted.

    Guarantees:

    - **At most once per date.** The execution of a date has an id derived from the
      trigger and the date; a date whose execution exists is never started again.
    - **Nothing skipped silently.** The last date handled is saved (and flushed) after
      each date, in the store's key-value documents (``_tiercel.triggers``,
      ``namespace/flowId/triggerId``). A date is skipped only by a rule, and each skip
      is logged: its conditions are false, it is later than ``lateMaximumDelay``, the
      missed-schedules policy, or ``max_catch_up``.
    - **Missed dates.** When the Scheduler (re)computes a trigger's schedule, at start
      and when the trigger's cron or time zone changes, the dates between the last one
      handled and now are missed: the trigger's ``recoverMissedSchedules`` (else
      ``missed``) fires ALL of them in order, only the LAST one (whose conditions hold),
      or NONE. At most ``max_catch_up`` of them fire: the most recent; the warning says
      how many older ones were skipped.
    - A trigger seen for the first time (or enabled again) starts from now, or from its
      ``backfill.start``. A disabled trigger or flow fires nothing; a removed trigger
      stops and forgets its state.
    - An execution that cannot start (invalid inputs...) is logged and its date counts
      as handled: a broken trigger never loops.

    Dates follow :class:`Cron` (wall-clock times in the trigger's time zone, daylight
    saving included). ``trigger.date``, ``trigger.next`` and ``trigger.previous`` are
    ISO-8601 texts with the zone's offset (``Z`` for UTC), as Kestra renders them.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        missed: MissedSchedules = MissedSchedules.ALL,
        max_catch_up: int = 1000,
    ) -> None:
        if max_catch_up < 0:
            raise ValueError("max_catch_up must not be negative")
        self.runtime = runtime
        self.missed = missed
        self.max_catch_up = max_catch_up
        self._entries: dict[TriggerKey, _Entry] = {}
        self._changed = False
        self._stops: dict[TriggerKey, str] = {}
        self._wake = anyio.Event()
        self._idle = False
        self._idle_changed = anyio.Event()
        self._running = False
        self._hooked = False

    # -- public API -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load every trigger's state, report started, then fire dates until cancelled.

        :raises RuntimeError: if this Scheduler is already running.
        """
        if self._running:
            raise RuntimeError("this Scheduler is already running")
        self._running = True
        if not self._hooked:
            self.runtime.on_execution_end(self._execution_ended)
            self._hooked = True
        try:
            self._entries.clear()
            self._changed = False
            await self._sync(startup=True)
            task_status.started()
            while True:
                if self._changed:
                    self._changed = False
                    await self._sync(startup=False)
                await self._apply_stops()
                await self._fire_due()
                await self._sleep()
        finally:
            self._running = False
            self._set_idle(False)

    def flows_changed(self) -> None:
        """Take the flows as they are now: new triggers start, changed ones follow their
        new definition, removed ones stop. Call it from the event loop, at any time
        (before or while the Scheduler runs); it returns at once."""
        self._changed = True
        self._wake.set()

    async def wait_idle(self) -> None:
        """Return once the Scheduler waits with nothing due: every date up to the clock's
        now has been handled (at once when it is not running)."""
        while self._running and not (
            self._idle and not self._changed and not self._stops and not self._due_now()
        ):
            await self._idle_changed.wait()

    def upcoming(self) -> list[tuple[TriggerKey, datetime]]:
        """The next date of each active trigger, soonest first."""
        found = [(due, key) for key, entry in self._entries.items() if (due := entry.due())]
        return [(key, due) for due, key in sorted(found)]

    # -- the loop -------------------------------------------------------------------------

    async def _sleep(self) -> None:
        wake = self._wake = anyio.Event()
        if self._changed or self._stops:
            return
        due = min((d for e in self._entries.values() if (d := e.due()) is not None), default=None)
        delay = None if due is None else (due - self.runtime.clock.utcnow()).total_seconds()
        if delay is not None and delay <= 0:
            await anyio.lowlevel.checkpoint()
            return
        self._set_idle(True)
        try:
            if delay is None:
                await wake.wait()
            else:
                with (
                    contextlib.suppress(TimeoutError),
                    self.runtime.clock.fail_after(min(delay, MAX_SLEEP)),
                ):
                    await wake.wait()
        finally:
            self._set_idle(False)

    def _set_idle(self, idle: bool) -> None:
        self._idle = idle
        changed, self._idle_changed = self._idle_changed, anyio.Event()
        changed.set()

    def _due_now(self) -> bool:
        now = self.runtime.clock.utcnow()
        return any((d := e.due()) is not None and d <= now for e in self._entries.values())

    async def _fire_due(self) -> None:
        while not self._changed and not self._stops:
            now = self.runtime.clock.utcnow()
            due = [(d, key) for key, e in self._entries.items() if (d := e.due()) and d <= now]
            if not due:
                return
            date, key = min(due)
            await self._handle(self._entries[key], date, now)

    async def _handle(self, entry: _Entry, date: datetime, now: datetime) -> None:
        logger = entry.logger().bind(date=entry.show(date))
        variables = self._variables(entry, date)
        skip = self._skip_reason(entry, date, now, variables)
        if skip is None:
            await self._start(entry, date, variables, logger)
        elif skip.startswith("its conditions do not hold"):
            logger.info("skipped a date: " + skip)
        else:
            logger.warning("skipped a date: " + skip)
        await self._advance(entry, date)

    def _skip_reason(
        self, entry: _Entry, date: datetime, now: datetime, variables: dict[str, Any]
    ) -> str | None:
        """Why ``date`` does not fire, or None if it does."""
        delay = entry.trigger.late_maximum_delay
        in_backfill = entry.backfill_until is not None and date <= entry.backfill_until
        if delay is not None and date + delay < now and not in_backfill:
            return f"it is more than lateMaximumDelay ({delay.iso()}) late"
        try:
            if all_hold(entry.trigger.date_conditions(), self._context(entry, variables)):
                return None
        except ConditionError as exc:
            return f"its conditions cannot be evaluated: {exc}"
        return "its conditions do not hold"

    async def _start(
        self,
        entry: _Entry,
        date: datetime,
        variables: dict[str, Any],
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        key, trigger = entry.key, entry.trigger
        execution_id = schedule_execution_id(key.namespace, key.flow_id, key.trigger_id, date)
        if await self.runtime.get_execution(execution_id) is not None:
            # Started, then the process died before saving the date: a warning, as a crash is.
            logger.warning("the date's execution had already started", execution_id=execution_id)
            return
        backfill = trigger.backfill
        in_backfill = entry.backfill_until is not None and date <= entry.backfill_until
        context = self._render_context(entry, variables)
        try:
            inputs = self.runtime.expressions.render_value(trigger.inputs or {}, context)
            if in_backfill and backfill is not None and backfill.inputs:
                inputs.update(self.runtime.expressions.render_value(backfill.inputs, context))
        except ExpressionError as exc:
            logger.error(  # noqa: TRY400 - the error says it all
                "skipped a date: the trigger's inputs cannot be rendered", error=str(exc)
            )
            return
        labels = trigger.label_map()
        if in_backfill and backfill is not None:
            labels.update(label_map(backfill.labels))
        try:
            await self.runtime.start(
                entry.flow,
                inputs,
                labels=labels,
                trigger={"id": trigger.id, "type": trigger.type, "variables": variables},
                execution_id=execution_id,
            )
        except TiercelError as exc:
            logger.error("the date's execution could not start", error=str(exc))  # noqa: TRY400
        except Exception:
            logger.exception("the date's execution could not start")
        else:
            logger.info("started a scheduled execution", execution_id=execution_id)

    async def _advance(self, entry: _Entry, date: datetime) -> None:
        """Count ``date`` as handled, durably."""
        if entry.pending and entry.pending[0] == date:
            entry.pending.popleft()
        entry.after = max(entry.after, date)
        if not entry.pending:
            entry.after = max(entry.after, entry.resume)
        await self._save(entry)
        await self.runtime.store.flush()

    # -- trigger variables ----------------------------------------------------------------

    def _variables(self, entry: _Entry, date: datetime) -> dict[str, Any]:
        """``trigger.date``, ``trigger.next`` and ``trigger.previous``, as Kestra sets them
        (with conditions: the nearest dates where they hold)."""
        assert entry.cron is not None
        variables: dict[str, Any] = {"date": entry.show(date)}
        following = self._search(entry, entry.cron.iter_after(date), date, forward=True)
        if following is not None:
            variables["next"] = entry.show(following)
        preceding = self._search(entry, entry.cron.iter_before(date), date, forward=False)
        if preceding is not None:
            variables["previous"] = entry.show(preceding)
        return variables

    def _search(
        self,
        entry: _Entry,
        dates: Iterator[datetime],
        near: datetime | None,
        *,
        forward: bool,
        bound: datetime | None = None,
        limit: int = _SEARCH_LIMIT,
    ) -> datetime | None:
        """The first of ``dates`` whose conditions hold (the first, without conditions),
        among ``limit`` and not beyond ``bound``. ``near``: the date next to the first one
        on the side the search comes from (computed when None)."""
        conditions = entry.trigger.date_conditions()
        current = next(dates, None)
        if not conditions:
            return current if current is not None and (bound is None or current > bound) else None
        assert entry.cron is not None
        if current is not None and near is None:
            near = entry.cron.next_after(current) if not forward else None
        for _ in range(limit):
            if current is None or (bound is not None and current <= bound):
                return None
            beyond = next(dates, None)
            earlier, later = (near, beyond) if forward else (beyond, near)
            variables = {"date": entry.show(current)}
            if later is not None:
                variables["next"] = entry.show(later)
            if earlier is not None:
                variables["previous"] = entry.show(earlier)
            with contextlib.suppress(ConditionError):
                if all_hold(conditions, self._context(entry, variables)):
                    return current
            near, current = current, beyond
        return None

    def _render_context(self, entry: _Entry, variables: dict[str, Any]) -> dict[str, Any]:
        flow = entry.flow
        return {
            "trigger": variables,
            "schedule": variables,
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision or 1},
            "envs": dict(self.runtime.services.envs),
        }

    def _context(self, entry: _Entry, variables: dict[str, Any]) -> ConditionContext:
        return ConditionContext(self.runtime.expressions, self._render_context(entry, variables))

    # -- loading and planning -------------------------------------------------------------

    async def _sync(self, *, startup: bool) -> None:
        """Bring the entries in line with the flows (``startup``: all of them are new)."""
        now = self.runtime.clock.utcnow()
        wanted: dict[TriggerKey, tuple[Flow, ScheduleTrigger]] = {}
        for flow in self.runtime.flows.all():
            for trigger in flow.triggers:
                if isinstance(trigger, ScheduleTrigger):
                    wanted[TriggerKey(flow.namespace, flow.id, trigger.id)] = (flow, trigger)
        for key in [k for k in self._entries if k not in wanted]:
            removed = self._entries.pop(key)
            await self.runtime.store.kv_delete(TRIGGERS_NAMESPACE, str(key))
            removed.logger().info("schedule removed")
        for key in sorted(wanted):
            flow, trigger = wanted[key]
            entry = self._entries.get(key)
            if entry is None or startup:
                await self._load(key, flow, trigger, now)
            else:
                await self._update(entry, flow, trigger, now)
        await self.runtime.store.flush()

    async def _load(
        self, key: TriggerKey, flow: Flow, trigger: ScheduleTrigger, now: datetime
    ) -> None:
        stored = await self.runtime.store.kv_get(TRIGGERS_NAMESPACE, str(key), now)
        state = _decode_state(stored) if stored is not None else None
        entry = _Entry(key, flow, trigger, self._cron(key, trigger))
        self._entries[key] = entry
        if entry.cron is None:
            return
        if flow.disabled or trigger.disabled:
            entry.after = state.last if state is not None and state.last else now
            if state is None or not state.disabled:
                await self._save(entry, disabled=True)
            return
        entry.active = True
        if state is None or state.last is None or state.disabled:
            await self._start_fresh(entry, now)
            return
        entry.stopped = state.stopped
        if entry.stopped is not None:
            entry.after = state.last  # nothing fires until the trigger changes
            return
        await self._plan(entry, state, now)

    async def _update(
        self, entry: _Entry, flow: Flow, trigger: ScheduleTrigger, now: datetime
    ) -> None:
        old = entry.trigger
        entry.flow, entry.trigger = flow, trigger
        rescheduled = (old.cron, old.timezone, old.with_seconds) != (
            trigger.cron,
            trigger.timezone,
            trigger.with_seconds,
        )
        if rescheduled:
            entry.cron = self._cron(entry.key, trigger)
        active = entry.cron is not None and not flow.disabled and not trigger.disabled
        if not active:
            if entry.active:
                entry.active = False
                entry.pending.clear()
                await self._save(entry, disabled=True)
                entry.logger().info("schedule disabled")
            return
        if not entry.active:
            entry.active = True
            await self._start_fresh(entry, now)
            return
        if entry.stopped is not None and trigger != old:
            entry.logger().info("schedule changed: it is no longer stopped, and starts from now")
            await self._start_fresh(entry, now)
            return
        if rescheduled:
            entry.logger().info("schedule changed: it continues from its last date")
            entry.pending.clear()
            entry.backfill_until = entry.backfill_resume = None
            await self._plan(entry, TriggerState(last=entry.after, stopped=entry.stopped), now)

    def _cron(self, key: TriggerKey, trigger: ScheduleTrigger) -> Cron | None:
        try:
            return Cron(trigger.cron, trigger.timezone, with_seconds=trigger.with_seconds)
        except CronError as exc:  # only for a flow built without validation
            log.error(  # noqa: TRY400 - the error says it all
                "schedule ignored: invalid cron", trigger=str(key), error=str(exc)
            )
            return None

    async def _start_fresh(self, entry: _Entry, now: datetime) -> None:
        """A trigger seen for the first time (or enabled again): from now, or backfill."""
        backfill = entry.trigger.backfill
        entry.pending.clear()
        entry.stopped = None
        if backfill is None:
            entry.after = entry.resume = now
            entry.backfill_until = entry.backfill_resume = None
            await self._save(entry)
            entry.logger().info("schedule started")
            return
        assert entry.cron is not None
        zone = entry.cron.zone
        start = _instant(backfill.start, zone)
        until = min(_instant(backfill.end, zone), now) if backfill.end is not None else now
        state = TriggerState(last=start - _MICROSECOND, backfill_until=until, backfill_resume=now)
        entry.logger().info("schedule started with a backfill", start=entry.show(start))
        await self._plan(entry, state, now)

    async def _plan(self, entry: _Entry, state: TriggerState, now: datetime) -> None:
        """Decide which dates between ``state.last`` and now fire, before the regular
        schedule resumes; save the result."""
        assert entry.cron is not None
        assert state.last is not None
        cron, last = entry.cron, state.last
        logger = entry.logger()
        entry.after = last
        entry.backfill_until, entry.backfill_resume = state.backfill_until, state.backfill_resume
        policy_from = last
        if state.backfill_resume is not None and last < state.backfill_resume:
            policy_from = state.backfill_resume
        policy = entry.trigger.recover_missed_schedules or self.missed
        missed: list[datetime] = []
        if policy is MissedSchedules.ALL:
            missed, older = await self._newest(cron, policy_from, now, self.max_catch_up)
            if older:
                logger.warning(
                    "missed dates beyond max_catch_up are skipped: only the most recent fire",
                    skipped=_count_text(older),
                    firing=len(missed),
                    max_catch_up=self.max_catch_up,
                )
        else:
            count = await _count(cron, policy_from, now)
            if policy is MissedSchedules.LAST:
                latest = self._latest_holding(entry, policy_from, now)
                missed = [latest] if latest is not None else []
            if count > len(missed):
                logger.warning(
                    "missed dates are skipped (recoverMissedSchedules)",
                    policy=policy.value,
                    skipped=_count_text(count - len(missed)),
                    firing=len(missed),
                )
        backfill: list[datetime] = []
        if state.backfill_until is not None and last < state.backfill_until:
            room = max(self.max_catch_up - len(missed), 0)
            backfill, older = await self._newest(
                cron, last, state.backfill_until + _MICROSECOND, room
            )
            if older:
                logger.warning(
                    "backfill dates beyond max_catch_up are skipped: only the most recent fire",
                    skipped=_count_text(older),
                    firing=len(backfill),
                    max_catch_up=self.max_catch_up,
                )
        pending = [*backfill, *self._drop_late(entry, missed, now)]
        previous = cron.previous_before(now)
        entry.resume = max(policy_from, previous) if previous is not None else policy_from
        entry.pending = deque(pending)
        if not entry.pending:
            entry.after = max(entry.after, entry.resume)
        entry.next_base = None
        await self._save(entry)

    def _drop_late(self, entry: _Entry, dates: list[datetime], now: datetime) -> list[datetime]:
        delay = entry.trigger.late_maximum_delay
        if delay is None:
            return dates
        kept = [d for d in dates if d + delay >= now]
        if len(kept) < len(dates):
            entry.logger().warning(
                "missed dates later than lateMaximumDelay are skipped",
                skipped=len(dates) - len(kept),
                late_maximum_delay=delay,
            )
        return kept

    def _latest_holding(self, entry: _Entry, after: datetime, now: datetime) -> datetime | None:
        """The latest date in (after, now) whose conditions hold (among the last
        ``max_catch_up`` dates)."""
        assert entry.cron is not None
        dates = entry.cron.iter_before(now)
        limit = max(self.max_catch_up, 1)
        return self._search(entry, dates, None, forward=False, bound=after, limit=limit)

    @staticmethod
    async def _newest(
        cron: Cron, after: datetime, before: datetime, keep: int
    ) -> tuple[list[datetime], int]:
        """The newest ``keep`` dates in (after, before), oldest first, and how many older
        ones there are (counted up to a limit)."""
        found: list[datetime] = []
        if keep > 0:
            for index, candidate in enumerate(cron.iter_before(before)):
                if candidate <= after or len(found) >= keep:
                    break
                found.append(candidate)
                if index % 500 == 499:
                    await anyio.lowlevel.checkpoint()
        found.reverse()
        older = 0
        if len(found) >= keep:
            older = await _count(cron, after, found[0] if found else before)
        return found, older

    async def _save(self, entry: _Entry, *, disabled: bool = False) -> None:
        state = entry.state()
        state.disabled = disabled
        await self.runtime.store.kv_put(
            TRIGGERS_NAMESPACE, str(entry.key), msgspec.to_builtins(state), None
        )

    # -- stopAfter ------------------------------------------------------------------------

    def _execution_ended(self, execution: Execution) -> None:
        trigger = execution.trigger or {}
        if not self._running or trigger.get("type") not in ScheduleTrigger.kestra_types:
            return
        key = TriggerKey(execution.namespace, execution.flow_id, str(trigger.get("id")))
        entry = self._entries.get(key)
        if entry is None or not entry.trigger.stop_after:
            return
        if execution.state.current in entry.trigger.stop_after:
            self._stops[key] = execution.state.current.value
            self._wake.set()

    async def _apply_stops(self) -> None:
        stops, self._stops = self._stops, {}
        for key, state in stops.items():
            entry = self._entries.get(key)
            if entry is None or entry.stopped is not None:
                continue
            entry.stopped = state
            entry.logger().warning(
                "schedule stopped: an execution it started ended in a stopAfter state",
                state=state,
            )
            await self._save(entry)
        if stops:
            await self.runtime.store.flush()


async def _count(cron: Cron, after: datetime, before: datetime) -> int:
    """How many dates in (after, before), up to ``_COUNT_LIMIT``."""
    count = 0
    for candidate in cron.iter_after(after):
        if candidate >= before or count >= _COUNT_LIMIT:
            break
        count += 1
        if count % 1000 == 0:
            await anyio.lowlevel.checkpoint()
    return count


def _count_text(count: int) -> int | str:
    return f"at least {count}" if count >= _COUNT_LIMIT else count


def java_iso(instant: datetime) -> str:
    """ISO-8601 with the offset, as Java prints a ``ZonedDateTime`` (``Z`` for UTC)."""
    text = instant.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _instant(value: datetime, zone: Any) -> datetime:
    """A UTC instant; a naive date-time is a wall time of ``zone``."""
    return (value if value.tzinfo is not None else value.replace(tzinfo=zone)).astimezone(UTC)


def _decode_state(stored: Any) -> TriggerState:
    """A stored state, its dates in UTC (dates of one zone compare by wall-clock time)."""
    state = msgspec.convert(stored, TriggerState)
    for name in ("last", "backfill_until", "backfill_resume"):
        value = getattr(state, name)
        if value is not None:
            setattr(state, name, value.astimezone(UTC))
    return state
