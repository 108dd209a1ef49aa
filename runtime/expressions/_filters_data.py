"""Number, collection and conversion filters (``length``, ``keys``, ``sort``, ``toJson``...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from runtime.expressions._checks import SEQUENCES, is_empty, need, need_int, type_name
from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._operators import is_number
from runtime.expressions._state import check_size
from runtime.expressions._text import java_string, to_json


def absolute(subject: Any, /) -> Any:
    """``abs``: absolute value of a number."""
    need(is_number(subject), f"abs needs a number, not {type_name(subject)}")
    return abs(subject)


def number(subject: Any, /, type: Any = None) -> Any:
    """``number(type)``: parse a string; type INT, LONG, FLOAT, DOUBLE, BIGDECIMAL..."""
    if subject is None:
        return None
    need(isinstance(subject, str), f"number can only parse strings, not {type_name(subject)}")
    kind = type.upper() if isinstance(type, str) else ""
    try:
        if kind in {"INT", "LONG", "BIGINTEGER"}:
            return _parse_int(subject)
        if kind in {"FLOAT", "DOUBLE", "BIGDECIMAL"}:
            return float(subject)
        return _parse_number(subject)
    except ValueError as exc:
        raise ExpressionTypeError(f"'{subject}' is not a valid number") from exc


def _parse_int(text: str) -> int:
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text.removeprefix("+"))
    if digits[:2].lower() == "0x" or digits.startswith("#"):
        return int(sign + digits.lstrip("#").removeprefix("0x").removeprefix("0X"), 16)
    return int(sign + digits, 10)


def _parse_number(text: str) -> int | float:
    suffix = text[-1:]
    if text.lstrip("+-")[:2].lower() == "0x" or text.lstrip("+-").startswith("#"):
        return _parse_int(text[:-1] if suffix in {"l", "L"} else text)
    if suffix in {"l", "L"}:
        return _parse_int(text[:-1])
    if suffix in {"f", "F", "d", "D"}:
        return float(text[:-1])
    if any(mark in text for mark in ".eE"):
        return float(text)
    return _parse_int(text)


def length(subject: Any, /) -> int:
    """``length``: characters, items or entries; 0 for null and anything else."""
    if isinstance(subject, str | Mapping | list | tuple | set | frozenset):
        return len(subject)
    return 0


def keys(subject: Any, /) -> Any:
    """``keys``: a map's keys, or a list's indexes."""
    if subject is None:
        return None
    if isinstance(subject, Mapping):
        return list(subject.keys())
    need(isinstance(subject, list | tuple), f"keys needs a map or a list, not {type_name(subject)}")
    return list(range(len(subject)))


def values(subject: Any, /) -> Any:
    """``values``: a map's values."""
    if subject is None:
        return None
    need(isinstance(subject, Mapping), f"values needs a map, not {type_name(subject)}")
    return list(subject.values())


def first(subject: Any, /) -> Any:
    """``first``: first item of a list or first character of a string."""
    return _end(subject, 0, "first")


def last(subject: Any, /) -> Any:
    """``last``: last item of a list or last character of a string."""
    return _end(subject, -1, "last")


def _end(subject: Any, index: int, name: str) -> Any:
    if subject is None:
        return None
    if isinstance(subject, str):
        need(bool(subject), f"{name} of an empty string")
        return subject[index]
    need(isinstance(subject, SEQUENCES), f"{name} needs a list, not {type_name(subject)}")
    items = list(subject)
    return items[index] if items else None


def join(subject: Any, /, separator: Any = None) -> Any:
    """``join(separator)``: the printed items joined (``null`` items print ``null``)."""
    if subject is None:
        return None
    need(isinstance(subject, SEQUENCES), f"join needs a list, not {type_name(subject)}")
    glue = "" if separator is None else java_string(separator)
    text = glue.join(java_string(item) for item in subject)
    check_size(len(text), "string")
    return text


def sort(subject: Any, /) -> Any:
    """``sort``: ascending order."""
    return _sorted(subject, reverse=False)


def rsort(subject: Any, /) -> Any:
    """``rsort``: descending order."""
    return _sorted(subject, reverse=True)


def _sorted(subject: Any, *, reverse: bool) -> Any:
    if subject is None:
        return None
    need(isinstance(subject, SEQUENCES), f"sort needs a list, not {type_name(subject)}")
    try:
        return sorted(subject, reverse=reverse)
    except TypeError as exc:
        raise ExpressionTypeError(f"cannot sort items of different kinds: {exc}") from exc


def reverse(subject: Any, /) -> Any:
    """``reverse``: a list (or string) in reverse order."""
    if subject is None:
        return None
    if isinstance(subject, str):
        return subject[::-1]
    need(isinstance(subject, list | tuple), f"reverse needs a list, not {type_name(subject)}")
    return list(reversed(subject))


def slice_(subject: Any, /, fromIndex: Any = 0, toIndex: Any = None) -> Any:  # noqa: N803
    """``slice(fromIndex, toIndex)``: part of a list or string (Pebble's bounds rules)."""
    if subject is None:
        return None
    need(isinstance(subject, str | list | tuple), "slice needs a list or a string")
    start = need_int(fromIndex, "slice's fromIndex")
    need(start >= 0, "slice's fromIndex must not be negative")
    end = len(subject) if toIndex is None else need_int(toIndex, "slice's toIndex")
    need(end <= len(subject), f"slice's toIndex must not exceed the size {len(subject)}")
    need(toIndex is None or start < end, "slice's toIndex must be greater than fromIndex")
    part = subject[start:end]
    return list(part) if isinstance(part, tuple) else part


def chunk(subject: Any, /, size: Any) -> Any:
    """``chunk(size)``: a list cut into lists of ``size`` items."""
    if subject is None:
        return None
    need(isinstance(subject, list | tuple), f"chunk needs a list, not {type_name(subject)}")
    step = need_int(size, "chunk's size")
    need(step > 0, "chunk's size must be positive")
    return [list(subject[index : index + step]) for index in range(0, len(subject), step)]


def flatten(subject: Any, /) -> Any:
    """``flatten``: lists inside a list spliced into it (one level)."""
    if subject is None:
        return None
    need(isinstance(subject, list | tuple), "flatten can only be applied to lists")
    flat: list[Any] = []
    for item in subject:
        if isinstance(item, list | tuple):
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def distinct(subject: Any, /) -> Any:
    """``distinct``: the list without repeated items, first occurrences kept."""
    if subject is None:
        return None
    need(isinstance(subject, list | tuple), f"distinct needs a list, not {type_name(subject)}")
    unique: list[Any] = []
    hashable: set[Any] = set()
    unhashable: list[Any] = []
    for item in subject:
        try:
            if item in hashable:
                continue
            hashable.add(item)
        except TypeError:
            if item in unhashable:
                continue
            unhashable.append(item)
        unique.append(item)
    return unique


def merge(subject: Any, /, items: Any) -> Any:
    """``merge(items)``: map with map (or list keys), list with list (or map entries)."""
    if subject is None or items is None:
        need(subject is not None or items is not None, "merge of two null values")
        return items if subject is None else subject
    if isinstance(subject, Mapping):
        need(isinstance(items, Mapping | list | tuple), "a map merges with a map or a list")
        extra = items if isinstance(items, Mapping) else {item: item for item in items}
        return {**subject, **extra}
    need(isinstance(subject, list | tuple), "merge needs a map or a list")
    need(isinstance(items, Mapping | list | tuple), "a list merges with a list or a map")
    if isinstance(items, Mapping):
        return [*subject, *({"key": key, "value": value} for key, value in items.items())]
    merged = [*subject, *items]
    check_size(len(merged), "list")
    return merged


def default(subject: Any, /, default: Any = None) -> Any:
    """``default(value)``: ``value`` when the input is undefined, null or empty."""
    return default if is_empty(subject) else subject


def to_json_filter(subject: Any, /) -> str:
    """``toJson`` (alias ``json``): compact JSON; ``null`` gives ``"null"``."""
    return to_json(subject)


def to_yaml(subject: Any, /) -> str:
    """``yaml``: YAML text of a value."""
    try:
        return yaml.safe_dump(subject, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError as exc:
        raise ExpressionTypeError(f"cannot convert to YAML: {exc}") from exc
