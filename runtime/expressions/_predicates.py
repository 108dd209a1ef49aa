"""Tests (``x is defined``, ``x is not empty``...), as Pebble and Kestra define them.

``defined``, ``null`` and ``empty`` see an undefined value instead of failing on it, so
``outputs.a.b.c is defined`` is false when ``outputs.a`` is missing. As in Pebble,
``defined`` means "present and not null".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from runtime.expressions._checks import is_empty
from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._undefined import PebbleUndefined


def defined(value: Any, /) -> bool:
    """``defined``: present and not null."""
    return value is not None and not isinstance(value, PebbleUndefined)


def null(value: Any, /) -> bool:
    """``null``: null, or undefined."""
    return not defined(value)


def empty(value: Any, /) -> bool:
    """``empty``: undefined, null, a blank string, an empty list or map."""
    return is_empty(value)


def _integer(value: Any, test: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    kind = "null" if value is None else type(value).__name__
    raise ExpressionTypeError(f"the '{test}' test needs an integer, not {kind}")


def even(value: Any, /) -> bool:
    """``even``: an even integer."""
    return _integer(value, "even") % 2 == 0


def odd(value: Any, /) -> bool:
    """``odd``: an odd integer."""
    return _integer(value, "odd") % 2 == 1


def iterable(value: Any, /) -> bool:
    """``iterable``: a list (maps and strings are not, as in Java)."""
    return isinstance(value, list | tuple | set | frozenset)


def is_map(value: Any, /) -> bool:
    """``map``: a map."""
    return isinstance(value, Mapping)


def is_json(value: Any, /) -> bool:
    """``json``: a string that parses as JSON."""
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


TESTS: dict[str, Callable[..., bool]] = {
    "defined": defined,
    "empty": empty,
    "even": even,
    "iterable": iterable,
    "json": is_json,
    "map": is_map,
    "null": null,
    "odd": odd,
}

#: Tests that receive an undefined value instead of failing on it.
LENIENT_TESTS = frozenset({"defined", "empty", "null"})
