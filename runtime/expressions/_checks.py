"""Argument checks shared by the filters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._strings import java_trim
from runtime.expressions._text import to_text
from runtime.expressions._undefined import PebbleUndefined

#: What Pebble treats as a collection (Java lists and sets).
SEQUENCES = (list, tuple, set, frozenset)


def type_name(value: Any) -> str:
    """``null`` or the Python type name of ``value``, for messages."""
    return "null" if value is None else type(value).__name__


def need(condition: bool, message: str) -> None:
    """Raise :class:`ExpressionTypeError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ExpressionTypeError(message)


def need_int(value: Any, what: str) -> int:
    """``value`` as an integer, or :class:`ExpressionTypeError` naming ``what``."""
    need(isinstance(value, int) and not isinstance(value, bool), f"{what} must be an integer")
    return int(value)


def as_text(value: Any) -> str:
    """A string as is, anything else as it prints (Java's ``toString``)."""
    return value if isinstance(value, str) else to_text(value)


def is_empty(value: Any) -> bool:
    """Pebble's ``empty`` test: null, undefined, blank string, empty list or map."""
    if value is None or isinstance(value, PebbleUndefined):
        return True
    if isinstance(value, str):
        return not java_trim(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return len(value) == 0
    return False
