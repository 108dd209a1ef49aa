"""Pebble's operators, as Kestra runs them (Pebble 3.2 plus Kestra's overrides).

- ``==``/``equals``: numbers compare by value across int and float; anything else uses
  plain equality, so the string ``'2'`` is not equal to the number ``2``.
- ``<``, ``>``, ``<=``, ``>=``: numbers, or two strings (Kestra's override); ``null``
  on either side is false; other operands are an error.
- ``+``: string concatenation when either side is a string, list append when the left
  side is a list, arithmetic otherwise. ``-``, ``*``, ``/``, ``%`` need numbers;
  integer ``/`` and ``%`` truncate toward zero as in Java.
- ``contains``: substring, list item (all items for a list), map key.
- ``in``/``not in``: Kestra's InExpression, comparing the text of the items.
- ``~``: concatenation of the printed values, ``null`` printing as nothing.

Extensions Pebble lacks but Jinja's syntax offers: ``//`` and ``**``, and repetition
(``'ab' * 3``); all of them are bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from runtime.expressions._errors import ExpressionLimitError, ExpressionTypeError
from runtime.expressions._state import MAX_INT_BITS, MAX_RANGE_SIZE, check_deadline, check_size
from runtime.expressions._text import java_string, to_text
from runtime.expressions._undefined import strict

_SEQUENCES = (list, tuple, set, frozenset)


def is_number(value: Any) -> bool:
    """True for ints and floats, false for booleans (they are not numbers in Pebble)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def equals(left: Any, right: Any) -> bool:
    """Pebble's ``==``: numeric across int/float, otherwise equality of same-kind values."""
    strict(left)
    strict(right)
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def not_equals(left: Any, right: Any) -> bool:
    """Pebble's ``!=``."""
    return not equals(left, right)


def _comparison(symbol: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        strict(left)
        strict(right)
        if left is None or right is None:
            return False
        if (is_number(left) and is_number(right)) or (
            isinstance(left, str) and isinstance(right, str)
        ):
            return test(left, right)
        raise ExpressionTypeError(
            f"invalid operands for '{symbol}': {_type_name(left)} and {_type_name(right)}"
        )

    compare.__doc__ = f"Pebble's ``{symbol}`` (numbers, or two strings)."
    return compare


less = _comparison("<", lambda a, b: bool(a < b))
greater = _comparison(">", lambda a, b: bool(a > b))
less_or_equal = _comparison("<=", lambda a, b: bool(a <= b))
greater_or_equal = _comparison(">=", lambda a, b: bool(a >= b))


def contains(left: Any, right: Any) -> bool:
    """Pebble's ``contains``: substring, item (all items of a list), or map key."""
    strict(left)
    strict(right)
    if left is None:
        return False
    if isinstance(left, str):
        return java_string(right) in left
    if isinstance(left, Mapping):
        return any(equals(key, right) for key in left)
    if isinstance(left, _SEQUENCES):
        if isinstance(right, _SEQUENCES):
            return all(_has_item(left, item) for item in right)
        return _has_item(left, right)
    raise ExpressionTypeError(
        f"'contains' works on strings, lists and maps, not on {_type_name(left)}"
    )


def _has_item(items: Any, wanted: Any) -> bool:
    check_deadline()
    return any(equals(item, wanted) for item in items)


def is_in(left: Any, right: Any) -> bool:
    """Kestra's ``in``: the text of ``left`` equals the text of an item (or map key/value)."""
    strict(left)
    strict(right)
    if left is None or right is None:
        return False
    wanted = java_string(left)
    if isinstance(right, Mapping):
        return any(
            java_string(key) == wanted or (value is not None and java_string(value) == wanted)
            for key, value in right.items()
        )
    if isinstance(right, _SEQUENCES):
        return any(item is not None and java_string(item) == wanted for item in right)
    return False


def is_not_in(left: Any, right: Any) -> bool:
    """Kestra's ``not in``."""
    return not is_in(left, right)


def concat(left: Any, right: Any) -> str:
    """Pebble's ``~``: printed values joined, ``null`` printing as nothing."""
    result = to_text(left) + to_text(right)
    check_size(len(result), "string")
    return result


def add(left: Any, right: Any) -> Any:
    """Pebble's ``+``: string concatenation, list append, or addition."""
    strict(left)
    strict(right)
    if isinstance(left, str) or isinstance(right, str):
        text = java_string(left) + java_string(right)
        check_size(len(text), "string")
        return text
    if isinstance(left, list):
        items = left + list(right) if isinstance(right, _SEQUENCES) else [*left, right]
        check_size(len(items), "list")
        return items
    return _arithmetic("+", left, right)


def subtract(left: Any, right: Any) -> Any:
    """Pebble's ``-``: list removal or subtraction."""
    strict(left)
    strict(right)
    if isinstance(left, list):
        return _without(left, right)
    return _arithmetic("-", left, right)


def _without(items: list[Any], removed: Any) -> list[Any]:
    if isinstance(removed, _SEQUENCES):
        return [item for item in items if not _has_item(removed, item)]
    result = list(items)
    for index, item in enumerate(result):
        if equals(item, removed):
            del result[index]
            break
    return result


def multiply(left: Any, right: Any) -> Any:
    """Pebble's ``*``; repeating a string or list by an integer is a bounded extension."""
    strict(left)
    strict(right)
    if isinstance(left, str | list) and _is_int(right):
        return _repeat(left, right)
    if isinstance(right, str | list) and _is_int(left):
        return _repeat(right, left)
    return _arithmetic("*", left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _repeat(value: str | list[Any], times: int) -> str | list[Any]:
    check_size(len(value) * max(times, 0), "repetition")
    return value * times


def divide(left: Any, right: Any) -> Any:
    """Pebble's ``/``: integer division truncates toward zero, float division is IEEE."""
    return _arithmetic("/", strict(left), strict(right))


def modulo(left: Any, right: Any) -> Any:
    """Pebble's ``%``: Java's remainder (its sign follows the dividend)."""
    return _arithmetic("%", strict(left), strict(right))


def floor_divide(left: Any, right: Any) -> Any:
    """``//`` (Jinja syntax, not Pebble): Python's floor division."""
    return _arithmetic("//", strict(left), strict(right))


def power(left: Any, right: Any) -> Any:
    """``**`` (Jinja syntax, not Pebble), refusing integers beyond the size limit."""
    return _arithmetic("**", strict(left), strict(right))


def negate(value: Any) -> Any:
    """Pebble's unary ``-``."""
    return _arithmetic("*", -1, strict(value))


def plus(value: Any) -> Any:
    """Pebble's unary ``+``."""
    return _arithmetic("*", 1, strict(value))


def _arithmetic(symbol: str, left: Any, right: Any) -> Any:
    if not (is_number(left) and is_number(right)):
        raise ExpressionTypeError(
            f"invalid operands for '{symbol}': {_type_name(left)} and {_type_name(right)}"
        )
    if isinstance(left, int) and isinstance(right, int):
        return _INTEGER_OPERATIONS[symbol](left, right)
    return _FLOAT_OPERATIONS[symbol](float(left), float(right))


def _int_multiply(left: int, right: int) -> int:
    if left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise ExpressionLimitError(f"integer product exceeds {MAX_INT_BITS} bits")
    return left * right


def _int_divide(left: int, right: int) -> int:
    if right == 0:
        raise ExpressionTypeError("division by zero")
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


def _int_modulo(left: int, right: int) -> int:
    if right == 0:
        raise ExpressionTypeError("division by zero")
    remainder = abs(left) % abs(right)
    return remainder if left >= 0 else -remainder


def _int_floor_divide(left: int, right: int) -> int:
    if right == 0:
        raise ExpressionTypeError("division by zero")
    return left // right


def _int_power(base: int, exponent: int) -> int | float:
    if exponent < 0:
        return _float_power(float(base), float(exponent))
    if abs(base) > 1 and exponent * (abs(base).bit_length() - 1) > MAX_INT_BITS:
        raise ExpressionLimitError(f"integer power exceeds {MAX_INT_BITS} bits")
    return int(base**exponent)


def _float_divide(left: float, right: float) -> float:
    if right == 0:
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return left / right


def _float_modulo(left: float, right: float) -> float:
    return math.nan if right == 0 else math.fmod(left, right)


def _float_floor_divide(left: float, right: float) -> float:
    if right == 0:
        raise ExpressionTypeError("division by zero")
    return left // right


def _float_power(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


_INTEGER_OPERATIONS: dict[str, Callable[[int, int], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": _int_multiply,
    "/": _int_divide,
    "%": _int_modulo,
    "//": _int_floor_divide,
    "**": _int_power,
}

_FLOAT_OPERATIONS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _float_divide,
    "%": _float_modulo,
    "//": _float_floor_divide,
    "**": _float_power,
}


def make_range(start: Any, end: Any, increment: Any = 1) -> list[Any]:
    """Pebble's ``range``/``..``: inclusive of ``end``, over integers or single characters.

    :raises ExpressionLimitError: if the list would hold more than a million items.
    """
    for value in (start, end, increment):
        strict(value)
    if not is_number(increment):
        raise ExpressionTypeError("the increment of range must be a number")
    step = int(increment)
    if step == 0:
        raise ExpressionTypeError("the increment of range must not be 0")
    if is_number(start) and is_number(end):
        return _bounded_range(int(start), int(end), step)
    if _is_char(start) and _is_char(end):
        return [chr(code) for code in _bounded_range(ord(start), ord(end), step)]
    raise ExpressionTypeError("range needs two numbers or two one-character strings")


def _is_char(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 1


def _bounded_range(first: int, last: int, step: int) -> list[int]:
    forward = step > 0
    if (last < first) if forward else (last > first):
        return []
    size = abs(last - first) // abs(step) + 1
    if size > MAX_RANGE_SIZE:
        raise ExpressionLimitError(
            f"range would produce {size} items, more than the limit of {MAX_RANGE_SIZE}"
        )
    return list(range(first, last + (1 if forward else -1), step))
