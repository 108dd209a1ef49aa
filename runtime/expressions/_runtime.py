"""The helpers compiled templates call.

This module is the whole runtime surface of a compiled template beyond Jinja's own:
operators, truth, attribute access, iteration, coalescing and the function namespace.
Compiled code imports its helpers from here (see ``_nodes``) or reaches them as
``environment.pebble_runtime``; templates themselves cannot name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from runtime.expressions._access import get_attribute, get_item
from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._operators import (
    add,
    concat,
    contains,
    divide,
    equals,
    floor_divide,
    greater,
    greater_or_equal,
    is_in,
    is_not_in,
    less,
    less_or_equal,
    make_range,
    modulo,
    multiply,
    negate,
    not_equals,
    plus,
    power,
    subtract,
)
from runtime.expressions._registry import FUNCTIONS
from runtime.expressions._state import check_deadline
from runtime.expressions._truth import ternary_bool, to_bool
from runtime.expressions._undefined import MissingVariable, PebbleUndefined, strict, undefined


def guard(evaluate: Callable[[], Any]) -> Any:
    """The value of ``evaluate()``, or an undefined value if a variable in it is missing.

    Pebble's ``is defined`` and ``| default`` catch "attribute not found" anywhere in
    their operand; this is that catch.
    """
    try:
        return evaluate()
    except MissingVariable as exc:
        return undefined(exc.name, exc.attribute)


def coalesce(left: Callable[[], Any], right: Callable[[], Any]) -> Any:
    """``left ?? right``: the right side when the left is missing, undefined or null."""
    try:
        value = left()
    except MissingVariable:
        return right()
    if value is None or isinstance(value, PebbleUndefined):
        return right()
    return value


def coalesce_undefined(left: Callable[[], Any], right: Callable[[], Any]) -> Any:
    """``left ??? right``: the right side only when the left is missing; null stays."""
    try:
        value = left()
    except MissingVariable:
        return right()
    return right() if isinstance(value, PebbleUndefined) else value


def iterate(value: Any) -> Iterator[Any]:
    """What ``{% for %}`` walks: list items, map entries (``.key``/``.value``), or nothing.

    :raises ExpressionTypeError: for a value that is not a list, a map or null.
    """
    strict(value)
    if value is None:
        return iter(())
    if isinstance(value, Mapping):
        return _checked([{"key": key, "value": item} for key, item in value.items()])
    if isinstance(value, list | tuple | set | frozenset):
        return _checked(value)
    raise ExpressionTypeError(f"cannot iterate over a {type(value).__name__}")


def _checked(items: Any) -> Iterator[Any]:
    for item in items:
        check_deadline()
        yield item


__all__ = (
    "FUNCTIONS",
    "add",
    "coalesce",
    "coalesce_undefined",
    "concat",
    "contains",
    "divide",
    "equals",
    "floor_divide",
    "get_attribute",
    "get_item",
    "greater",
    "greater_or_equal",
    "guard",
    "is_in",
    "is_not_in",
    "iterate",
    "less",
    "less_or_equal",
    "make_range",
    "modulo",
    "multiply",
    "negate",
    "not_equals",
    "plus",
    "power",
    "strict",
    "subtract",
    "ternary_bool",
    "to_bool",
)
