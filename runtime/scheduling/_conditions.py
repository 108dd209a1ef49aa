"""Evaluating trigger conditions: on a schedule date, or on an execution that ended."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from runtime.errors import TiercelError
from runtime.expressions import ExpressionEngine, ExpressionError, is_truthy
from runtime.model._execution import Execution
from runtime.model._triggers import (
    Comparison,
    Condition,
    DateTimeBetweenCondition,
    DayInMonth,
    DayOfWeek,
    DayWeekCondition,
    DayWeekInMonthCondition,
    ExecutionFilter,
    ExecutionFlowCondition,
    ExecutionLabelsCondition,
    ExecutionNamespaceCondition,
    ExecutionOutputsCondition,
    ExecutionStatusCondition,
    ExpressionCondition,
    FilterField,
    FilterType,
    MultipleConditionSpec,
    NotCondition,
    Operand,
    OrCondition,
    TimeBetweenCondition,
    UpstreamFlow,
    WeekendCondition,
    label_map,
)

_WEEKDAYS = list(DayOfWeek)  # Monday first, as date.weekday() counts


class ConditionError(TiercelError):
    """A condition that cannot be evaluated: an expression that fails, a date that does
    not parse, an execution condition with no execution. Callers treat it as false."""


@dataclass(frozen=True)
class ConditionContext:
    """What conditions see: ``variables`` for expressions, and the ending ``execution``
    (None on a schedule)."""

    expressions: ExpressionEngine
    variables: Mapping[str, Any]
    execution: Execution | None = None

    def render(self, template: str) -> str:
        """Render ``template`` with the variables.

        :raises ConditionError: if it fails.
        """
        try:
            return self.expressions.render(template, self.variables)
        except ExpressionError as exc:
            raise ConditionError(f"cannot render {template!r}: {exc}") from exc

    def ended(self, condition: Condition) -> Execution:
        """The ending execution.

        :raises ConditionError: if there is none (a condition on executions on a schedule).
        """
        if self.execution is None:
            name = type(condition).__name__.removesuffix("Condition")
            raise ConditionError(f"{name} tests an execution and there is none here")
        return self.execution


def all_hold(conditions: Iterable[Condition], context: ConditionContext) -> bool:
    """Whether every condition holds (true for none).

    :raises ConditionError: if one cannot be evaluated.
    """
    return all(holds(condition, context) for condition in conditions)


def holds(condition: Condition, context: ConditionContext) -> bool:
    """Whether ``condition`` holds in ``context``, as Kestra's condition of that type.

    :raises ConditionError: if it cannot be evaluated.
    """
    if isinstance(condition, NotCondition):
        return not any(holds(c, context) for c in condition.conditions)
    if isinstance(condition, OrCondition):
        return any(holds(c, context) for c in condition.conditions)
    if isinstance(condition, ExpressionCondition):
        return _rendered_true(context.render(condition.expression))
    if isinstance(condition, DayWeekCondition | WeekendCondition | DayWeekInMonthCondition):
        return _on_day(condition, _local_date(context.render(condition.date)))
    if isinstance(condition, DateTimeBetweenCondition):
        return _between(_zoned(context.render(condition.date)), condition.after, condition.before)
    if isinstance(condition, TimeBetweenCondition):
        current = _zoned(context.render(condition.date)).timetz()
        after = _offset_time(condition.after) if condition.after else None
        before = _offset_time(condition.before) if condition.before else None
        return (after is None or current > after) and (before is None or current < before)
    return _on_execution(condition, context)


def _on_execution(condition: Condition, context: ConditionContext) -> bool:
    if isinstance(condition, MultipleConditionSpec):
        raise ConditionError("MultipleCondition works only among a Flow trigger's conditions")
    execution = context.ended(condition)
    if isinstance(condition, ExecutionStatusCondition):
        state = execution.state.current
        return (condition.in_ is None or state in condition.in_) and (
            condition.not_in is None or state not in condition.not_in
        )
    if isinstance(condition, ExecutionNamespaceCondition):
        comparison = condition.comparison or (
            Comparison.PREFIX if condition.prefix else Comparison.EQUALS
        )
        namespace = execution.namespace
        if comparison is Comparison.PREFIX:
            return namespace.startswith(condition.namespace)
        if comparison is Comparison.SUFFIX:
            return namespace.endswith(condition.namespace)
        return namespace == condition.namespace
    if isinstance(condition, ExecutionFlowCondition):
        return (execution.namespace, execution.flow_id) == (condition.namespace, condition.flow_id)
    if isinstance(condition, ExecutionLabelsCondition):
        return _has_labels(execution, label_map(condition.labels))
    if isinstance(condition, ExecutionOutputsCondition):
        if not execution.outputs:
            return False
        variables = dict(context.variables)
        trigger = dict(variables.get("trigger") or {})
        trigger["outputs"] = execution.outputs
        variables["trigger"] = trigger
        scoped = ConditionContext(context.expressions, variables, execution)
        return _rendered_true(scoped.render(condition.expression))
    raise ConditionError(f"conditions of type {type(condition).__name__} are not supported")


def upstream_flow_holds(upstream: UpstreamFlow, execution: Execution) -> bool:
    """Whether ``execution`` meets a ``preconditions.flows`` entry."""
    if execution.namespace != upstream.namespace:
        return False
    if upstream.flow_id is not None and execution.flow_id != upstream.flow_id:
        return False
    if upstream.states is not None and execution.state.current not in upstream.states:
        return False
    return upstream.labels is None or _has_labels(execution, label_map(upstream.labels))


def filter_holds(entry: ExecutionFilter, context: ConditionContext) -> bool:
    """Whether the ending execution passes a ``preconditions.where`` entry.

    :raises ConditionError: if an EXPRESSION filter cannot be rendered.
    """
    results = (_filter(f.field, f.type, f.value, f.values, context) for f in entry.filters)
    return any(results) if entry.operand is Operand.OR else all(results)


def _filter(
    field: FilterField,
    kind: FilterType,
    value: str | None,
    values: list[str] | None,
    context: ConditionContext,
) -> bool:
    execution = context.execution
    assert execution is not None
    actual: str
    if field is FilterField.FLOW_ID:
        actual = execution.flow_id
    elif field is FilterField.NAMESPACE:
        actual = execution.namespace
    elif field is FilterField.STATE:
        actual = execution.state.current.value
    else:
        actual = context.render(value or "")
    if kind in (FilterType.IS_NULL, FilterType.IS_NOT_NULL):
        return kind is FilterType.IS_NOT_NULL  # every field has a value here
    if kind is FilterType.IS_TRUE:
        return is_truthy(actual)
    if kind is FilterType.IS_FALSE:
        return not is_truthy(actual)
    if kind in (FilterType.IN, FilterType.NOT_IN):
        return (actual in (values or [])) == (kind is FilterType.IN)
    expected = value or ""
    if kind is FilterType.EQUAL_TO:
        return actual == expected
    if kind is FilterType.NOT_EQUAL_TO:
        return actual != expected
    if kind is FilterType.STARTS_WITH:
        return actual.startswith(expected)
    if kind is FilterType.ENDS_WITH:
        return actual.endswith(expected)
    if kind is FilterType.CONTAINS:
        return expected in actual
    return re.fullmatch(expected, actual) is not None  # REGEX: Java's matches() is whole-string


def _rendered_true(rendered: str) -> bool:
    """Kestra's test of a rendered condition expression: not blank and not ``false``."""
    return not (rendered.strip() == "" or rendered.strip() == "false")


def _has_labels(execution: Execution, wanted: Mapping[str, str]) -> bool:
    present = {(label.key, label.value) for label in execution.labels}
    return all((key, value) in present for key, value in wanted.items())


def _on_day(
    condition: DayWeekCondition | WeekendCondition | DayWeekInMonthCondition, day: date
) -> bool:
    if isinstance(condition, WeekendCondition):
        return day.weekday() >= 5
    weekday = _WEEKDAYS.index(condition.day_of_week)
    if isinstance(condition, DayWeekCondition):
        return day.weekday() == weekday
    first = 1 + (weekday - date(day.year, day.month, 1).weekday()) % 7
    if condition.day_in_month is DayInMonth.LAST:
        last_day = calendar.monthrange(day.year, day.month)[1]
        wanted = last_day - (date(day.year, day.month, last_day).weekday() - weekday) % 7
    else:
        order = [DayInMonth.FIRST, DayInMonth.SECOND, DayInMonth.THIRD, DayInMonth.FOURTH]
        wanted = first + 7 * order.index(condition.day_in_month)
    return day.day == wanted


def _between(current: datetime, after: datetime | None, before: datetime | None) -> bool:
    return (after is None or current > _aware(after)) and (
        before is None or current < _aware(before)
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _offset_time(value: time) -> time:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _zoned(text: str) -> datetime:
    """A rendered date-time (ISO-8601 with an offset; UTC without one)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConditionError(f"{text!r} is not an ISO-8601 date-time") from None
    # fromisoformat gives a fixed offset: the time of day keeps it (a zone's would not).
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _local_date(text: str) -> date:
    """The calendar date of a rendered date or date-time, as written (not moved to UTC)."""
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ConditionError(f"{text!r} is not an ISO-8601 date or date-time") from None
