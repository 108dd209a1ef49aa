"""Triggers: Schedule (cron), Flow (another flow ended), Webhook, and the conditions that
filter them. Parsed and validated here; ``runtime.scheduling`` runs them."""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, ClassVar, Union, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from runtime.model._common import Duration, Spec, as_text
from runtime.model._states import TERMINAL, State

# -- conditions ----------------------------------------------------------------------------


class DayOfWeek(enum.Enum):
    """Java's ``DayOfWeek`` names."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class DayInMonth(enum.Enum):
    """Which occurrence of a weekday in its month."""

    FIRST = "FIRST"
    SECOND = "SECOND"
    THIRD = "THIRD"
    FOURTH = "FOURTH"
    LAST = "LAST"


class Comparison(enum.Enum):
    """How ``ExecutionNamespace`` compares namespaces."""

    EQUALS = "EQUALS"
    PREFIX = "PREFIX"
    SUFFIX = "SUFFIX"


class WindowType(enum.Enum):
    """The kinds of time window in which preconditions must all be met."""

    DURATION_WINDOW = "DURATION_WINDOW"
    SLIDING_WINDOW = "SLIDING_WINDOW"
    DAILY_TIME_DEADLINE = "DAILY_TIME_DEADLINE"
    DAILY_TIME_WINDOW = "DAILY_TIME_WINDOW"


class TimeWindow(Spec, kw_only=True):
    """When preconditions must all be met (Kestra's ``timeWindow``; days are UTC days).

    ``DURATION_WINDOW`` (default): consecutive windows of ``window`` (one day by default)
    from midnight, shifted by ``windowAdvance``. ``SLIDING_WINDOW``: the last ``window``
    before each evaluation. ``DAILY_TIME_DEADLINE``: from midnight to ``deadline``.
    ``DAILY_TIME_WINDOW``: from ``startTime`` to ``endTime`` each day.
    """

    type: WindowType = WindowType.DURATION_WINDOW
    window: Duration | None = None
    window_advance: Duration | None = None
    deadline: time | None = None
    start_time: time | None = None
    end_time: time | None = None

    def __post_init__(self) -> None:
        allowed = {
            WindowType.DURATION_WINDOW: {"window", "window_advance"},
            WindowType.SLIDING_WINDOW: {"window"},
            WindowType.DAILY_TIME_DEADLINE: {"deadline"},
            WindowType.DAILY_TIME_WINDOW: {"start_time", "end_time"},
        }[self.type]
        names = {
            "window": "window",
            "window_advance": "windowAdvance",
            "deadline": "deadline",
            "start_time": "startTime",
            "end_time": "endTime",
        }
        for field, name in names.items():
            if getattr(self, field) is not None and field not in allowed:
                raise ValueError(f"a time window of type {self.type.value} cannot have {name}")
        required = {
            WindowType.DAILY_TIME_DEADLINE: ("deadline",),
            WindowType.DAILY_TIME_WINDOW: ("start_time", "end_time"),
        }.get(self.type, ())
        for field in required:
            if getattr(self, field) is None:
                raise ValueError(f"a time window of type {self.type.value} needs {names[field]}")
        if self.window is not None and self.window.total_seconds() <= 0:
            raise ValueError("window must be a positive duration")
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValueError("startTime must be before endTime")


class Condition(Spec, kw_only=True, tag_field="type"):
    """Base of trigger conditions. ``on_dates``: it tests a date (usable on a Schedule)."""

    on_dates: ClassVar[bool] = False


class DayWeekCondition(Condition, kw_only=True, tag="io.kestra.plugin.core.condition.DayWeek"):
    """``date`` (rendered; the schedule date by default) falls on ``dayOfWeek``."""

    day_of_week: DayOfWeek
    date: str = "{{ trigger.date }}"

    on_dates = True


class DayWeekInMonthCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.DayWeekInMonth"
):
    """``date`` is the first (second, third, fourth, last) ``dayOfWeek`` of its month."""

    day_of_week: DayOfWeek
    day_in_month: DayInMonth
    date: str = "{{ trigger.date }}"

    on_dates = True


class WeekendCondition(Condition, kw_only=True, tag="io.kestra.plugin.core.condition.Weekend"):
    """``date`` is a Saturday or a Sunday."""

    date: str = "{{ trigger.date }}"

    on_dates = True


class DateTimeBetweenCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.DateTimeBetween"
):
    """``date`` is strictly after ``after`` and strictly before ``before`` (either may be
    left out, not both). Dates without an offset are UTC."""

    date: str = "{{ trigger.date }}"
    after: datetime | None = None
    before: datetime | None = None

    on_dates = True

    def __post_init__(self) -> None:
        if self.after is None and self.before is None:
            raise ValueError("needs after, before or both")


class TimeBetweenCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.TimeBetween"
):
    """The time of day of ``date`` is strictly between ``after`` and ``before`` (times
    with an offset, such as ``09:00:00+02:00``; without one, UTC)."""

    date: str = "{{ trigger.date }}"
    after: time | None = None
    before: time | None = None

    on_dates = True

    def __post_init__(self) -> None:
        if self.after is None and self.before is None:
            raise ValueError("needs after, before or both")


class ExpressionCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.Expression"
):
    """``expression`` renders to something other than blank or ``false``."""

    expression: str

    on_dates = True


class NotCondition(Condition, kw_only=True, tag="io.kestra.plugin.core.condition.Not"):
    """None of ``conditions`` holds."""

    conditions: list[AnyCondition]

    on_dates = True

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError("needs at least one condition")


class OrCondition(Condition, kw_only=True, tag="io.kestra.plugin.core.condition.Or"):
    """At least one of ``conditions`` holds."""

    conditions: list[AnyCondition]

    on_dates = True

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError("needs at least one condition")


class ExecutionStatusCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.ExecutionStatus"
):
    """The execution's state is in ``in`` (if given) and not in ``notIn`` (if given)."""

    in_: list[State] | None = msgspec.field(default=None, name="in")
    not_in: list[State] | None = None


class ExecutionNamespaceCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.ExecutionNamespace"
):
    """The execution's namespace equals (starts with, ends with) ``namespace``.

    ``comparison`` defaults to EQUALS, or PREFIX with the older ``prefix: true``.
    """

    namespace: str
    comparison: Comparison | None = None
    prefix: bool = False


class ExecutionFlowCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.ExecutionFlow"
):
    """The execution is one of the flow ``namespace``.``flowId``."""

    namespace: str
    flow_id: str


class ExecutionLabelsCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.ExecutionLabels"
):
    """The execution has every one of ``labels`` (a mapping, or a list of key/value)."""

    labels: dict[str, Any] | list[dict[str, Any]]

    def __post_init__(self) -> None:
        label_map(self.labels)


class ExecutionOutputsCondition(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.ExecutionOutputs"
):
    """The execution has outputs and ``expression`` (which sees ``trigger.outputs``)
    renders to something other than blank or ``false``."""

    expression: str


class MultipleConditionSpec(
    Condition, kw_only=True, tag="io.kestra.plugin.core.condition.MultipleCondition"
):
    """(Deprecated in Kestra for ``preconditions``.) Every named condition must have held
    for some ending execution within the time window."""

    id: str
    conditions: dict[str, AnyCondition]
    time_window: TimeWindow | None = None
    window: Duration | None = None
    window_advance: Duration | None = None
    reset_on_success: bool = True

    def __post_init__(self) -> None:
        if not self.conditions:
            raise ValueError("needs at least one condition")

    def effective_window(self) -> TimeWindow:
        """``timeWindow``, with the older ``window`` and ``windowAdvance`` folded in."""
        base = self.time_window or TimeWindow()
        if self.window is None and self.window_advance is None:
            return base
        return msgspec.structs.replace(
            base,
            window=self.window if self.window is not None else base.window,
            window_advance=(
                self.window_advance if self.window_advance is not None else base.window_advance
            ),
        )


_CONDITIONS: tuple[type[Condition], ...] = (
    DayWeekCondition,
    DayWeekInMonthCondition,
    WeekendCondition,
    DateTimeBetweenCondition,
    TimeBetweenCondition,
    ExpressionCondition,
    NotCondition,
    OrCondition,
    ExecutionStatusCondition,
    ExecutionNamespaceCondition,
    ExecutionFlowCondition,
    ExecutionLabelsCondition,
    ExecutionOutputsCondition,
    MultipleConditionSpec,
)

_LEGACY_NAMES = {"Expression": "VariableCondition", "MultipleCondition": "MultipleCondition"}
"""Kestra's older names that are not simply ``<name>Condition``."""


def _aliases(cls: type[Condition]) -> list[type[Condition]]:
    """Subclasses of ``cls`` tagged with Kestra's older type names for it."""
    tag = str(cls.__struct_config__.tag)
    short = tag.rsplit(".", 1)[1]
    names = [
        f"io.kestra.core.models.conditions.types.{_LEGACY_NAMES.get(short, short + 'Condition')}"
    ]
    if not short.endswith("Condition"):
        names.append(f"io.kestra.plugin.core.condition.{short}Condition")
    return [
        cast(
            "type[Condition]",
            msgspec.defstruct(cls.__name__, [], bases=(cls,), tag=name, kw_only=True),
        )
        for name in names
        if name != tag
    ]


CONDITION_CLASSES: tuple[type[Condition], ...] = _CONDITIONS + tuple(
    alias for cls in _CONDITIONS for alias in _aliases(cls)
)
"""Every condition type, under Kestra's current names first, then the older aliases."""

if TYPE_CHECKING:
    AnyCondition = Condition
else:
    AnyCondition = Union[CONDITION_CLASSES]  # noqa: UP007 - built from a tuple at run time


def label_map(labels: dict[str, Any] | list[dict[str, Any]] | None) -> dict[str, str]:
    """Labels written as a mapping or as a list of ``{key, value}``, as a mapping of text.

    :raises ValueError: if a list item is not a mapping with ``key`` and ``value``.
    """
    if labels is None:
        return {}
    if isinstance(labels, dict):
        return {str(k): as_text(v) or "" for k, v in labels.items()}
    found: dict[str, str] = {}
    for item in labels:
        if not isinstance(item, dict) or "key" not in item or "value" not in item:
            raise ValueError("as a list, labels need a key and a value in each item")
        found[str(item["key"])] = as_text(item["value"]) or ""
    return found


# -- triggers ------------------------------------------------------------------------------


class MissedSchedules(enum.Enum):
    """What a Schedule does with dates that passed while no scheduler ran it
    (Kestra's ``recoverMissedSchedules``): fire them ALL in order, only the LAST, or NONE."""

    ALL = "ALL"
    LAST = "LAST"
    NONE = "NONE"


class _Trigger(Spec, kw_only=True):
    id: str
    type: str
    description: str | None = None
    disabled: bool = False
    inputs: dict[str, Any] | None = None
    conditions: list[AnyCondition] = msgspec.field(default_factory=list)
    labels: dict[str, Any] | list[dict[str, Any]] | None = None
    """Labels given to the executions the trigger starts (with the flow's)."""
    stop_after: list[State] | None = None
    """Stop (disable) the trigger once an execution it started ends in one of these."""

    kestra_types: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[tuple[str, str]]:
        """Problems beyond types: ``(field, message)`` pairs."""
        try:
            label_map(self.labels)
        except ValueError as exc:
            return [("labels", str(exc))]
        return []

    def label_map(self) -> dict[str, str]:
        """The trigger's labels as a mapping of text."""
        return label_map(self.labels)


class Backfill(Spec, kw_only=True):
    """(Deprecated in Kestra.) Fire every date from ``start`` (to ``end``, and never past
    the moment the trigger is first seen) when a Schedule is first seen. Dates without an
    offset are in the trigger's time zone."""

    start: datetime
    end: datetime | None = None
    inputs: dict[str, Any] | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        label_map(self.labels)
        end, start = self.end, self.start
        if end is not None and (start.tzinfo is None) == (end.tzinfo is None) and end < start:
            raise ValueError("backfill end must not be before its start")


_NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def cron_problem(expression: str, with_seconds: bool) -> str | None:
    """Why ``expression`` is not a cron Tiercel can run, or None if it is.

    Five fields (minute, hour, day of month, month, day of week), six with seconds first
    when ``with_seconds``, or a nickname such as ``@daily``. A valid expression must also
    match some date (``0 0 30 2 *`` never does).
    """
    from croniter import CroniterBadDateError, croniter  # slow to import: on first use

    text = expression.strip()
    if text not in _NICKNAMES:
        shape = "6 fields (seconds first)" if with_seconds else "5 fields"
        if len(text.split()) != (6 if with_seconds else 5):
            count = len(text.split())
            hint = " (or set withSeconds: true)" if count == 6 and not with_seconds else ""
            return f"invalid cron expression {expression!r}: expected {shape}, found {count}{hint}"
        if text.startswith("@") or not croniter.is_valid(text, second_at_beginning=True):
            return f"invalid cron expression {expression!r}: a field is out of range or malformed"
    try:
        croniter(text, datetime(2000, 1, 1), second_at_beginning=True).get_next(datetime)
    except CroniterBadDateError:
        return f"cron expression {expression!r} never matches a date"
    except (ValueError, KeyError) as exc:  # croniter's own parse errors
        return f"invalid cron expression {expression!r}: {exc}"
    return None


class ScheduleTrigger(_Trigger, kw_only=True):
    """Start an execution on a cron schedule, in ``timezone`` (wall-clock times there).

    ``recoverMissedSchedules`` says what happens to dates missed while no scheduler ran
    (the scheduler's default when left out); ``lateMaximumDelay`` skips a date when it
    could not start within that delay; ``conditions`` (date conditions) skip the dates
    where they do not hold.
    """

    cron: str
    timezone: str = "Etc/UTC"
    with_seconds: bool = False
    late_maximum_delay: Duration | None = None
    recover_missed_schedules: MissedSchedules | None = None
    backfill: Backfill | None = None
    schedule_conditions: list[AnyCondition] = msgspec.field(default_factory=list)
    """Kestra's deprecated spelling of date ``conditions``; both are used."""

    kestra_types = (
        "io.kestra.plugin.core.trigger.Schedule",
        "io.kestra.core.models.triggers.types.Schedule",
        "Schedule",
    )

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        problem = cron_problem(self.cron, self.with_seconds)
        if problem is not None:
            found.append(("cron", problem))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(("timezone", f"unknown time zone {self.timezone!r}"))
        if self.late_maximum_delay is not None and self.late_maximum_delay.total_seconds() <= 0:
            found.append(("lateMaximumDelay", "must be a positive duration"))
        return found

    def date_conditions(self) -> list[Condition]:
        """The conditions that test dates (others would need an execution: ignored, as
        Kestra does on a Schedule)."""
        every = [*self.conditions, *self.schedule_conditions]
        return [c for c in every if c.on_dates]


class UpstreamFlow(Spec, kw_only=True):
    """A precondition: an execution of this flow (namespace, and flow id if given) ended
    in one of ``states`` (any, if not given), with these ``labels`` (if given)."""

    namespace: str
    flow_id: str | None = None
    states: list[State] | None = None
    labels: dict[str, Any] | None = None


class FilterField(enum.Enum):
    """What a precondition filter looks at."""

    FLOW_ID = "FLOW_ID"
    NAMESPACE = "NAMESPACE"
    STATE = "STATE"
    EXPRESSION = "EXPRESSION"


class FilterType(enum.Enum):
    """How a precondition filter compares."""

    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL_TO = "NOT_EQUAL_TO"
    IN = "IN"
    NOT_IN = "NOT_IN"
    IS_TRUE = "IS_TRUE"
    IS_FALSE = "IS_FALSE"
    IS_NULL = "IS_NULL"
    IS_NOT_NULL = "IS_NOT_NULL"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    REGEX = "REGEX"
    CONTAINS = "CONTAINS"


_NEEDS_VALUE = frozenset(
    {
        FilterType.EQUAL_TO,
        FilterType.NOT_EQUAL_TO,
        FilterType.STARTS_WITH,
        FilterType.ENDS_WITH,
        FilterType.REGEX,
        FilterType.CONTAINS,
    }
)


class Operand(enum.Enum):
    """How the filters of one ``where`` entry combine."""

    AND = "AND"
    OR = "OR"


class Filter(Spec, kw_only=True):
    """One comparison of an ending execution's ``field`` with ``value`` or ``values``."""

    field: FilterField
    type: FilterType
    value: str | None = None
    values: list[str] | None = None

    def __post_init__(self) -> None:
        if self.field is FilterField.EXPRESSION and self.value is None:
            raise ValueError("an EXPRESSION filter needs the expression as its value")
        if self.type in (FilterType.IN, FilterType.NOT_IN) and self.values is None:
            raise ValueError(f"a {self.type.value} filter needs values")
        if self.type in _NEEDS_VALUE and self.value is None:
            raise ValueError(f"a {self.type.value} filter needs a value")


class ExecutionFilter(Spec, kw_only=True):
    """A precondition met by an ending execution that passes ``filters``."""

    id: str
    filters: list[Filter]
    operand: Operand = Operand.AND

    def __post_init__(self) -> None:
        if not self.filters:
            raise ValueError("a where entry needs at least one filter")


class Preconditions(Spec, kw_only=True):
    """Every one of ``flows`` and ``where`` must have been met by some ending execution
    within ``timeWindow`` (a day from midnight UTC by default). ``resetOnSuccess``
    (default): once all are met and the flow starts, they must all be met again."""

    id: str
    flows: list[UpstreamFlow] | None = None
    where: list[ExecutionFilter] | None = None
    time_window: TimeWindow = msgspec.field(default_factory=TimeWindow)
    reset_on_success: bool = True

    def __post_init__(self) -> None:
        if not self.flows and not self.where:
            raise ValueError("preconditions need flows or where (or both)")


class FlowTrigger(_Trigger, kw_only=True):
    """Start an execution when another flow's execution ends: in one of ``states`` (any
    final state by default), passing ``conditions``, and once ``preconditions`` are met."""

    states: list[State] | None = None
    preconditions: Preconditions | None = None

    kestra_types = (
        "io.kestra.plugin.core.trigger.Flow",
        "io.kestra.core.models.triggers.types.Flow",
        "Flow",
    )

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        for state in self.states or ():
            if state not in TERMINAL:
                found.append(
                    (
                        "states",
                        f"{state.value} is not a final state: Flow triggers are evaluated "
                        "when an execution ends",
                    )
                )
        return found

    def end_states(self) -> frozenset[State]:
        """The states an ending execution must be in."""
        return frozenset(self.states) if self.states else TERMINAL


class WebhookTrigger(_Trigger, kw_only=True):
    """Start an execution on a call to ``/api/v1/executions/webhook/{namespace}/{flowId}/{key}``."""

    key: str

    kestra_types = (
        "io.kestra.plugin.core.trigger.Webhook",
        "io.kestra.core.models.triggers.types.Webhook",
        "Webhook",
    )

    def problems(self) -> list[tuple[str, str]]:
        found = super().problems()
        if not self.key.strip():
            found.append(("key", "must not be empty"))
        return found


class ConcurrencyBehavior(enum.Enum):
    """What happens to a new execution when the flow's concurrency limit is reached."""

    QUEUE = "QUEUE"
    CANCEL = "CANCEL"
    FAIL = "FAIL"


Trigger = ScheduleTrigger | FlowTrigger | WebhookTrigger

TRIGGER_CLASSES: dict[str, type[_Trigger]] = {
    name: cls for cls in (ScheduleTrigger, FlowTrigger, WebhookTrigger) for name in cls.kestra_types
}
