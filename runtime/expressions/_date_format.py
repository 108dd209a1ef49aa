"""Formatting dates with Java ``DateTimeFormatter`` patterns and Kestra's named formats.

A pattern (``yyyy-MM-dd'T'HH:mm``) is compiled once into literal strings and
``(letter, count)`` fields rather than translated to ``strftime``, whose letters and
padding rules differ. Named formats are Kestra's (``iso``, ``sql``, ``iso_instant``...,
AbstractDate.FORMATTERS) and Java's localized styles (``short``... ``full``), in English.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._text import offset_text

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ORDINALS = ("1st", "2nd", "3rd", "4th")

Part = tuple[str, int] | str


def _zone_id(moment: datetime) -> str:
    zone = moment.tzinfo
    if isinstance(zone, ZoneInfo):
        return zone.key
    if zone is UTC:
        return "UTC"
    offset = moment.utcoffset()
    return "Z" if not offset else offset_text(offset, colon=True, seconds=True)


def format_datetime(moment: datetime, pattern: str, zone: tzinfo) -> str:
    """Format ``moment`` in ``zone`` with a Java pattern or a Kestra format name.

    :raises ExpressionTypeError: for a malformed pattern or an unsupported letter.
    """
    local = moment.astimezone(zone)
    named = NAMED.get(pattern)
    if named is not None:
        return named(local)
    return "".join(
        part if isinstance(part, str) else _field(local, *part)
        for part in compile_pattern(_STYLES.get(pattern, pattern))
    )


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> tuple[Part, ...]:
    """Split a Java pattern into literal strings and ``(letter, count)`` fields."""
    parts: list[Part] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "'":
            literal, index = _quoted(pattern, index)
            parts.append(literal)
        elif char.isascii() and char.isalpha():
            end = index
            while end < len(pattern) and pattern[end] == char:
                end += 1
            parts.append((char, end - index))
            index = end
        elif char in "#{}":
            raise ExpressionTypeError(f"reserved character '{char}' in date pattern '{pattern}'")
        else:
            if char not in "[]":
                parts.append(char)
            index += 1
    return tuple(parts)


def _quoted(pattern: str, start: int) -> tuple[str, int]:
    if pattern.startswith("''", start):
        return "'", start + 2
    end = start + 1
    text: list[str] = []
    while end < len(pattern):
        if pattern.startswith("''", end):
            text.append("'")
            end += 2
        elif pattern[end] == "'":
            return "".join(text), end + 1
        else:
            text.append(pattern[end])
            end += 1
    raise ExpressionTypeError(f"unterminated quote in date pattern '{pattern}'")


def _pad(number: int, width: int) -> str:
    return f"{number:0{width}d}" if number >= 0 else "-" + f"{-number:0{width}d}"


def _text_form(full: str, count: int) -> str:
    if count >= 5:
        return full[0]
    return full if count == 4 else full[:3]


def _year(moment: datetime, count: int, year: int) -> str:
    return f"{year % 100:02d}" if count == 2 else _pad(year, count)


def _month(moment: datetime, count: int) -> str:
    if count >= 3:
        return _text_form(_MONTHS[moment.month - 1], count)
    return _pad(moment.month, count)


def _quarter(moment: datetime, count: int) -> str:
    quarter = (moment.month - 1) // 3 + 1
    if count == 3:
        return f"Q{quarter}"
    if count == 4:
        return f"{_ORDINALS[quarter - 1]} quarter"
    return _pad(quarter, min(count, 2))


def _local_day_of_week(moment: datetime, count: int) -> str:
    if count >= 3:
        return _text_form(_DAYS[moment.weekday()], count)
    return _pad(moment.isoweekday() % 7 + 1, count)


def _fraction(moment: datetime, count: int) -> str:
    return f"{moment.microsecond:06d}000"[:count].ljust(count, "0")


def _offset(moment: datetime, count: int, *, zero_as_z: bool) -> str:
    offset = moment.utcoffset() or timedelta(0)
    if zero_as_z and not offset:
        return "Z"
    colon = count in (3, 5)
    text = offset_text(offset, colon=colon, seconds=count >= 4)
    if count == 1 and text.endswith("00"):
        return text[:3]
    return text


def _zone_name(moment: datetime, count: int) -> str:
    return moment.tzname() or _zone_id(moment)


def _gmt_offset(moment: datetime, count: int) -> str:
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return "GMT"
    text = offset_text(offset, colon=True, seconds=True)
    if count == 1:
        hours = text[1:3].lstrip("0") or "0"
        minutes = text[4:]
        return f"GMT{text[0]}{hours}" + (f":{minutes}" if minutes != "00" else "")
    return "GMT" + text


def _numeric_offset(moment: datetime, count: int) -> str:
    if count == 4:
        return _gmt_offset(moment, 4)
    if count == 5:
        return _offset(moment, 5, zero_as_z=True)
    return offset_text(moment.utcoffset() or timedelta(0), colon=False, seconds=False)


def _millis_of_day(moment: datetime) -> int:
    return (moment.hour * 3600 + moment.minute * 60 + moment.second) * 1000 + (
        moment.microsecond // 1000
    )


_FIELDS: dict[str, Callable[[datetime, int], str]] = {
    "G": lambda m, c: "Anno Domini" if c == 4 else ("A" if c >= 5 else "AD"),
    "y": lambda m, c: _year(m, c, m.year),
    "u": lambda m, c: _year(m, c, m.year),
    "Y": lambda m, c: _year(m, c, m.isocalendar().year),
    "M": _month,
    "L": _month,
    "d": lambda m, c: _pad(m.day, c),
    "D": lambda m, c: _pad(m.timetuple().tm_yday, c),
    "Q": _quarter,
    "q": _quarter,
    "w": lambda m, c: _pad(m.isocalendar().week, c),
    "F": lambda m, c: _pad((m.day - 1) // 7 + 1, c),
    "E": lambda m, c: _text_form(_DAYS[m.weekday()], max(c, 3)),
    "e": _local_day_of_week,
    "c": _local_day_of_week,
    "a": lambda m, c: "AM" if m.hour < 12 else "PM",
    "h": lambda m, c: _pad(m.hour % 12 or 12, c),
    "K": lambda m, c: _pad(m.hour % 12, c),
    "k": lambda m, c: _pad(m.hour or 24, c),
    "H": lambda m, c: _pad(m.hour, c),
    "m": lambda m, c: _pad(m.minute, c),
    "s": lambda m, c: _pad(m.second, c),
    "S": _fraction,
    "A": lambda m, c: _pad(_millis_of_day(m), c),
    "n": lambda m, c: _pad(m.microsecond * 1000, c),
    "N": lambda m, c: _pad(_millis_of_day(m) * 1_000_000 + (m.microsecond % 1000) * 1000, c),
    "V": lambda m, c: _zone_id(m),
    "z": _zone_name,
    "O": _gmt_offset,
    "X": lambda m, c: _offset(m, c, zero_as_z=True),
    "x": lambda m, c: _offset(m, c, zero_as_z=False),
    "Z": _numeric_offset,
}


def _field(moment: datetime, letter: str, count: int) -> str:
    render = _FIELDS.get(letter)
    if render is None:
        raise ExpressionTypeError(f"unsupported date pattern letter '{letter}'")
    return render(moment, count)


# -- Kestra's named formats (AbstractDate.FORMATTERS) and localized styles --------------


def _iso_time(moment: datetime) -> str:
    text = f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text


def _iso_offset(moment: datetime) -> str:
    return _offset(moment, 5, zero_as_z=True)


def _iso_date(moment: datetime) -> str:
    return f"{_pad(moment.year, 4)}-{moment.month:02d}-{moment.day:02d}"


def _iso_date_time(moment: datetime) -> str:
    text = f"{_iso_date(moment)}T{_iso_time(moment)}{_iso_offset(moment)}"
    if isinstance(moment.tzinfo, ZoneInfo):
        text += f"[{moment.tzinfo.key}]"
    return text


def _iso_instant(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    text = f"{_iso_date(utc)}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    micros = utc.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def _iso_week_date(moment: datetime) -> str:
    year, week, day = moment.isocalendar()
    return f"{_pad(year, 4)}-W{week:02d}-{day}{_iso_offset(moment)}"


def _rfc_1123(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    zone = "GMT" if not offset else offset_text(offset, colon=False, seconds=False)
    return (
        f"{_DAYS[moment.weekday()][:3]}, {moment.day} {_MONTHS[moment.month - 1][:3]} "
        f"{_pad(moment.year, 4)} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {zone}"
    )


NAMED_PATTERNS = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
}


def _pattern_formatter(pattern: str) -> Callable[[datetime], str]:
    parts = compile_pattern(pattern)
    return lambda m: "".join(p if isinstance(p, str) else _field(m, *p) for p in parts)


NAMED: dict[str, Callable[[datetime], str]] = {
    **{name: _pattern_formatter(pattern) for name, pattern in NAMED_PATTERNS.items()},
    "iso_date_time": _iso_date_time,
    "iso_zoned_date_time": _iso_date_time,
    "iso_date": lambda m: _iso_date(m) + _iso_offset(m),
    "iso_time": lambda m: _iso_time(m) + _iso_offset(m),
    "iso_local_date": _iso_date,
    "iso_instant": _iso_instant,
    "iso_local_date_time": lambda m: f"{_iso_date(m)}T{_iso_time(m)}",
    "iso_local_time": _iso_time,
    "iso_offset_time": lambda m: _iso_time(m) + _iso_offset(m),
    "iso_ordinal_date": lambda m: (
        f"{_pad(m.year, 4)}-{_pad(m.timetuple().tm_yday, 3)}" + _iso_offset(m)
    ),
    "iso_week_date": _iso_week_date,
    "rfc_1123_date_time": _rfc_1123,
}

#: English renderings of Java's localized FormatStyle (CLDR, approximately).
_STYLES = {
    "short": "M/d/yy, h:mm a",
    "medium": "MMM d, y, h:mm:ss a",
    "long": "MMMM d, y 'at' h:mm:ss a z",
    "full": "EEEE, MMMM d, y 'at' h:mm:ss a zzzz",
}
