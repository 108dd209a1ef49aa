"""How values print, as Kestra prints them.

Kestra renders through Pebble into a JSON-aware writer: maps and lists print as compact
JSON, booleans as ``true``/``false``, ``null`` as nothing, doubles as Java's
``Double.toString`` (``1.0``, ``1.0E20``) and date-times in ISO-8601.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._undefined import PebbleUndefined, fail

_JAVA_PLAIN_LOW = 1e-3
_JAVA_PLAIN_HIGH = 1e7


def to_text(value: Any) -> str:
    """The text Kestra prints for ``value`` in ``{{ ... }}``.

    :raises MissingVariable: if ``value`` is undefined.
    :raises ExpressionTypeError: for values that are not data (a macro, the loop object).
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return format_double(value)
    return _other_to_text(value)


def _other_to_text(value: Any) -> str:
    if isinstance(value, PebbleUndefined):
        fail(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_double(float(value))
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return to_json(value)
    temporal = temporal_text(value)
    if temporal is not None:
        return temporal
    if isinstance(value, Decimal):
        return format(value, "f")
    raise ExpressionTypeError(f"cannot print a value of type {type(value).__name__}")


def java_string(value: Any) -> str:
    """Java's ``String.valueOf``: like :func:`to_text` but ``null`` prints as ``null``."""
    return "null" if value is None else to_text(value)


def format_double(number: float) -> str:
    """Java's ``Double.toString``: ``1.0``, ``0.001``, ``1.0E7``, ``1.5E-4``, ``NaN``."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    if _JAVA_PLAIN_LOW <= abs(number) < _JAVA_PLAIN_HIGH:
        text = repr(number)
        return text if "." in text else text + ".0"
    return _scientific(number)


def _scientific(number: float) -> str:
    sign, digits, exponent = Decimal(repr(number)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    power = exponent + len(digits) - 1
    mantissa = text[0] + "." + (text[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{power}"


def to_json(value: Any) -> str:
    """Compact JSON as Kestra's Jackson mapper writes it (dates as ISO strings)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ExpressionTypeError(f"cannot convert to JSON: {exc}") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, PebbleUndefined):
        fail(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, Decimal):
        return float(value)
    temporal = temporal_text(value)
    if temporal is None:
        raise TypeError(f"a value of type {type(value).__name__} is not JSON data")
    return temporal


def temporal_text(value: Any) -> str | None:
    """ISO-8601 text of a datetime, date, time or timedelta; None for anything else."""
    if isinstance(value, datetime):
        return _date_text(value) + "T" + _clock_text(value) + _offset_text(value.utcoffset())
    if isinstance(value, date):
        return _date_text(value)
    if isinstance(value, time):
        return _clock_text(value) + _offset_text(value.utcoffset())
    if isinstance(value, timedelta):
        return duration_text(value)
    return None


def _date_text(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _clock_text(value: datetime | time) -> str:
    text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    micros = value.microsecond
    if micros == 0:
        return text
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}"
    return f"{text}.{micros:06d}"


def _offset_text(offset: timedelta | None) -> str:
    if offset is None:
        return ""
    if not offset:
        return "Z"
    return offset_text(offset, colon=True, seconds=True)


def offset_text(offset: timedelta, *, colon: bool, seconds: bool) -> str:
    """``+02:00`` (or ``+0200`` without ``colon``); seconds only when present."""
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, secs = divmod(rest, 60)
    separator = ":" if colon else ""
    text = f"{sign}{hours:02d}{separator}{minutes:02d}"
    if seconds and secs:
        text += f"{separator}{secs:02d}"
    return text


def duration_text(value: timedelta) -> str:
    """Java's ``Duration.toString``: ``PT1H30M``, ``PT0.5S``, ``PT-1S``, ``PT0S``."""
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "PT0S"
    sign = "-" if micros < 0 else ""
    hours, rest = divmod(abs(micros), 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    secs, fraction = divmod(rest, 1_000_000)
    text = "PT"
    if hours:
        text += f"{sign}{hours}H"
    if minutes:
        text += f"{sign}{minutes}M"
    if secs or fraction:
        digits = f".{fraction:06d}".rstrip("0") if fraction else ""
        text += f"{sign}{secs}{digits}S"
    return text
