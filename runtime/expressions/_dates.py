"""Kestra's date handling (AbstractDate.java): zones, reading dates, ``dateAdd`` units.

The default time zone is UTC where Kestra uses the JVM's zone. Formatting lives in
``_date_format``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.expressions._date_format import NAMED, NAMED_PATTERNS, compile_pattern
from runtime.expressions._date_format import format_datetime as format_datetime
from runtime.expressions._errors import ExpressionTypeError

_OFFSET_ZONE = re.compile(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?")
_ZONE_SUFFIX = re.compile(r"(.*)\[([^\]]+)\]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- time zones -------------------------------------------------------------------------


@lru_cache(maxsize=256)
def zone_of(name: str | None) -> tzinfo:
    """Java's ``ZoneId.of``: region ids (``Europe/Paris``), ``UTC``, ``Z``, ``+02:00``.

    ``None`` is UTC. :raises ExpressionTypeError: for an unknown zone.
    """
    if name is None or name in {"UTC", "Z"}:
        return UTC
    offset = _OFFSET_ZONE.fullmatch(name)
    try:
        if offset is not None:
            return _fixed_offset(*offset.groups())
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ExpressionTypeError(f"unknown time zone '{name}'") from exc


def _fixed_offset(sign: str, hours: str, minutes: str | None, seconds: str | None) -> tzinfo:
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0))
    return timezone(-delta if sign == "-" else delta)


# -- reading dates ----------------------------------------------------------------------


def to_datetime(value: Any, zone: tzinfo, existing_format: str | None = None) -> datetime:
    """Kestra's ``convert``: a datetime, a date (at noon), epoch seconds or a string.

    Strings are ISO-8601 (zoned, local date-time, or date at midnight) unless
    ``existing_format`` gives a Java pattern. Values without a zone get ``zone``.

    :raises ExpressionTypeError: if the value cannot be read as a date.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(12), zone)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value, zone)
    if isinstance(value, str):
        return _parse(value, zone, existing_format)
    raise ExpressionTypeError(f"cannot read a date from a {type(value).__name__}")


def _from_epoch(seconds: float, zone: tzinfo) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, zone)
    except (OverflowError, OSError, ValueError) as exc:
        raise ExpressionTypeError(f"epoch seconds {seconds} are out of range") from exc


def _parse(text: str, zone: tzinfo, existing_format: str | None) -> datetime:
    try:
        if existing_format is not None and existing_format in NAMED:
            existing_format = NAMED_PATTERNS.get(existing_format)
        if existing_format is not None:
            parsed = datetime.strptime(text, _strptime_pattern(existing_format))
            region = None
        else:
            parsed, region = _parse_iso(text)
    except ValueError as exc:
        raise ExpressionTypeError(f"cannot parse date '{text}': {exc}") from exc
    if region is not None:
        target = zone_of(region)
        return parsed.astimezone(target) if parsed.tzinfo else parsed.replace(tzinfo=target)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _parse_iso(text: str) -> tuple[datetime, str | None]:
    suffix = _ZONE_SUFFIX.fullmatch(text)
    if suffix is not None:
        return datetime.fromisoformat(suffix.group(1)), suffix.group(2)
    return datetime.fromisoformat(text), None


@lru_cache(maxsize=256)
def _strptime_pattern(pattern: str) -> str:
    pieces: list[str] = []
    for part in compile_pattern(pattern):
        if isinstance(part, str):
            pieces.append(part.replace("%", "%%"))
        else:
            pieces.append(_strptime_field(*part))
    return "".join(pieces)


def _strptime_field(letter: str, count: int) -> str:
    if letter in "yu":
        return "%y" if count == 2 else "%Y"
    if letter in "ML":
        return {3: "%b", 4: "%B"}.get(count, "%m")
    if letter == "E":
        return "%A" if count >= 4 else "%a"
    directive = {
        "d": "%d",
        "D": "%j",
        "H": "%H",
        "k": "%H",
        "h": "%I",
        "K": "%I",
        "m": "%M",
        "s": "%S",
        "S": "%f",
        "a": "%p",
        "X": "%z",
        "x": "%z",
        "Z": "%z",
        "z": "%Z",
    }.get(letter)
    if directive is None:
        raise ExpressionTypeError(f"pattern letter '{letter}' cannot be used to parse dates")
    return directive


# -- arithmetic -------------------------------------------------------------------------

_EXACT_UNITS = {
    "MICROS": timedelta(microseconds=1),
    "MILLIS": timedelta(milliseconds=1),
    "SECONDS": timedelta(seconds=1),
    "MINUTES": timedelta(minutes=1),
    "HOURS": timedelta(hours=1),
    "HALF_DAYS": timedelta(hours=12),
}
_DAY_UNITS = {"DAYS": 1, "WEEKS": 7}
_MONTH_UNITS = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}


def add(moment: datetime, amount: int, unit: str) -> datetime:
    """``ZonedDateTime.plus(amount, ChronoUnit.valueOf(unit))``.

    Time units move the instant; DAYS and WEEKS keep the local time across DST changes;
    MONTHS and longer clamp the day to the end of the month (Jan 31 + 1 month = Feb 28).

    :raises ExpressionTypeError: for an unknown unit or a result out of range.
    """
    key = unit.upper()
    if key == "NANOS":
        key, amount = "MICROS", int(amount / 1000)
    try:
        if key in _EXACT_UNITS:
            return (moment.astimezone(UTC) + _EXACT_UNITS[key] * amount).astimezone(moment.tzinfo)
        if key in _DAY_UNITS:
            return _local_shift(moment, timedelta(days=_DAY_UNITS[key] * amount))
        if key in _MONTH_UNITS:
            return _add_months(moment, _MONTH_UNITS[key] * amount)
    except (OverflowError, ValueError) as exc:
        raise ExpressionTypeError(f"date out of range after adding {amount} {unit}") from exc
    raise ExpressionTypeError(f"unknown date unit '{unit}'")


def _local_shift(moment: datetime, delta: timedelta) -> datetime:
    return (moment.replace(tzinfo=None) + delta).replace(tzinfo=moment.tzinfo)


def _add_months(moment: datetime, months: int) -> datetime:
    year, month_index = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    month = month_index + 1
    day = min(moment.day, _days_in_month(year, month))
    return moment.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def epoch_nanos(moment: datetime) -> int:
    """Nanoseconds since 1970-01-01T00:00Z."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since 1970-01-01T00:00Z (floored, like ``toEpochSecond``)."""
    return (moment - _EPOCH) // timedelta(seconds=1)
