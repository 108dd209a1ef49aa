"""Date filters: ``date``, ``dateAdd``, ``timestamp``, ``timestampNano`` (Kestra's)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from runtime.expressions import _dates
from runtime.expressions._checks import need, need_int


def date(
    subject: Any,
    /,
    format: Any = "iso",
    timeZone: Any = None,  # noqa: N803
    existingFormat: Any = None,  # noqa: N803
    locale: Any = None,
) -> Any:
    """``date(format, timeZone, existingFormat)``: format a date, ISO string or epoch."""
    if subject is None:
        return None
    zone = _zone(timeZone)
    moment = _dates.to_datetime(subject, zone, _optional_text(existingFormat, "existingFormat"))
    return _dates.format_datetime(moment, _format_of(format), zone)


def date_add(
    subject: Any,
    /,
    amount: Any,
    unit: Any,
    format: Any = "iso",
    timeZone: Any = None,  # noqa: N803
    existingFormat: Any = None,  # noqa: N803
    locale: Any = None,
) -> Any:
    """``dateAdd(amount, unit)``: add an amount of SECONDS, HOURS, DAYS, MONTHS..."""
    if subject is None:
        return None
    zone = _zone(timeZone)
    moment = _dates.to_datetime(subject, zone, _optional_text(existingFormat, "existingFormat"))
    need(isinstance(unit, str), "dateAdd's unit must be a string such as 'DAYS'")
    shifted = _dates.add(moment, need_int(amount, "dateAdd's amount"), unit)
    return _dates.format_datetime(shifted, _format_of(format), zone)


def timestamp(subject: Any, /, timeZone: Any = None, existingFormat: Any = None) -> Any:  # noqa: N803
    """``timestamp``: epoch seconds of a date."""
    if subject is None:
        return None
    zone = _zone(timeZone)
    fmt = _optional_text(existingFormat, "existingFormat")
    return _dates.epoch_seconds(_dates.to_datetime(subject, zone, fmt))


def timestamp_nano(subject: Any, /, timeZone: Any = None, existingFormat: Any = None) -> Any:  # noqa: N803
    """``timestampNano``: epoch nanoseconds of a date, as a string."""
    if subject is None:
        return None
    zone = _zone(timeZone)
    fmt = _optional_text(existingFormat, "existingFormat")
    return str(_dates.epoch_nanos(_dates.to_datetime(subject, zone, fmt)))


def _zone(name: Any) -> tzinfo:
    return _dates.zone_of(_optional_text(name, "timeZone"))


def _optional_text(value: Any, what: str) -> str | None:
    need(value is None or isinstance(value, str), f"{what} must be a string")
    return value  # type: ignore[no-any-return]


def _format_of(value: Any) -> str:
    need(isinstance(value, str), "a date format must be a string")
    return value  # type: ignore[no-any-return]
