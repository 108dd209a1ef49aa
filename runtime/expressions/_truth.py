"""Truth, twice: of a value inside an expression, and of a rendered condition string."""

from __future__ import annotations

from typing import Any

from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._undefined import PebbleUndefined, fail

#: Rendered strings Kestra's ``TruthUtils`` reads as false (core/.../utils/TruthUtils.java).
_FALSE_STRINGS = frozenset({"false", "0", "-0", ""})


def is_truthy(rendered: str | None) -> bool:
    """Kestra's ``TruthUtils.isTruthy`` for ``If``, ``runIf``, ``Fail`` and ``WaitFor``.

    False for ``None`` and for exactly ``"false"``, ``"0"``, ``"-0"`` and ``""``; true
    for every other string. The match is exact: ``"False"``, ``" false"``, ``"0.0"``
    and ``"no"`` are true, as in Kestra.
    """
    return rendered is not None and rendered not in _FALSE_STRINGS


def to_bool(value: Any, where: str) -> bool:
    """Pebble's boolean view of ``value`` in ``where`` (``if``, ``and``, ``or``, ``not``).

    Booleans are themselves, numbers are true unless zero, strings are true unless
    empty (so the string ``"false"`` is true, as in Pebble).

    :raises ExpressionTypeError: for ``null`` (strict mode) and for maps and lists.
    """
    if value is True or value is False:
        return value
    if value is None:
        raise ExpressionTypeError(f"null value used in '{where}' (strict variables)")
    return _non_null_to_bool(value, where)


def ternary_bool(value: Any) -> bool:
    """Pebble's test of a ``cond ? a : b`` condition: like :func:`to_bool`, null is false."""
    if value is None:
        return False
    return to_bool(value, "?:")


def _non_null_to_bool(value: Any, where: str) -> bool:
    if isinstance(value, PebbleUndefined):
        fail(value)
    if isinstance(value, int | float | str):
        return bool(value)
    raise ExpressionTypeError(
        f"unsupported value of type {type(value).__name__} in '{where}'; "
        "expected a boolean, a number or a string"
    )
