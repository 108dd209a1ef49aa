"""Attribute and subscript access: the sandbox's front door.

Templates read data, never Python objects. ``a.b`` and ``a['b']`` look up keys of maps
and indexes of lists (``parents.0``, ``list['1']``), as Pebble's map and list resolvers
do; nothing ever reaches a Python attribute or method. A missing key or index, or any
attribute of ``null``, is a strict undefined value (see ``_undefined``). Names that only
make sense as an escape (``__class__``, ``mro``, ``func_globals``, ``format``...) raise
:class:`ExpressionSecurityError`, and so does any attribute of an object that is not data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

from jinja2.runtime import LoopContext

from runtime.expressions._errors import ExpressionSecurityError, ExpressionTypeError
from runtime.expressions._undefined import PebbleUndefined, undefined

#: Python internals that appear in template-injection payloads.
_ESCAPE_NAMES = frozenset(
    {
        "mro",
        "format",
        "format_map",
        "func_globals",
        "func_code",
        "func_closure",
        "func_defaults",
        "func_dict",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "im_func",
        "im_self",
        "im_class",
    }
)

#: Escape names that are never data keys either (``format`` may well be one).
_NEVER_KEYS = _ESCAPE_NAMES - {"format", "format_map"}

#: Pebble's loop variables (0-based ``index``) read from Jinja's loop object.
_LOOP_ATTRIBUTES = {
    "index": "index0",
    "revindex": "revindex0",
    "first": "first",
    "last": "last",
    "length": "length",
}

#: Plain values (and null, and undefined): a missing attribute is undefined, not an escape.
_DATA_TYPES = (
    type(None),
    PebbleUndefined,
    str,
    int,
    float,
    list,
    tuple,
    set,
    frozenset,
    date,
    time,
    timedelta,
    Decimal,
)


def check_name(name: str) -> None:
    """Refuse a name or attribute that is always an escape attempt.

    :raises ExpressionSecurityError: for double-underscore names (``__class__``...).
    """
    if name.startswith("__"):
        raise ExpressionSecurityError(f"access to '{name}' is not allowed")


def child_path(base: str, key: Any) -> str:
    """The dotted path of ``base.key`` or ``base[key]``, for error messages."""
    if isinstance(key, str) and key.isidentifier():
        return f"{base}.{key}" if base else key
    shown = repr(key) if isinstance(key, str) else str(key)
    return f"{base}[{shown}]"


def get_attribute(obj: Any, name: str, base: str) -> Any:
    """``obj.name`` for templates; ``base`` is the path of ``obj`` (may be empty).

    :raises ExpressionSecurityError: for escape names and for objects that are not data.
    """
    check_name(name)
    if isinstance(obj, Mapping):
        try:
            return obj[name]
        except KeyError:
            if name in _NEVER_KEYS:
                raise ExpressionSecurityError(f"access to '{name}' is not allowed") from None
            return _missing(obj, base, name)
    if name.startswith("_") or name in _ESCAPE_NAMES:
        raise ExpressionSecurityError(f"access to attribute '{name}' is not allowed")
    if isinstance(obj, list | tuple) and name.isdigit():
        return _index(obj, int(name), base, int(name))
    if isinstance(obj, LoopContext):
        return _loop_attribute(obj, name)
    if isinstance(obj, _DATA_TYPES):
        return _missing(obj, base, name)
    raise ExpressionSecurityError(
        f"attribute '{name}' of a {type(obj).__name__} object is not accessible"
    )


def get_item(obj: Any, key: Any, base: str) -> Any:
    """``obj[key]`` for templates; ``base`` is the path of ``obj`` (may be empty).

    :raises ExpressionSecurityError: for double-underscore keys and non-data objects.
    :raises ExpressionTypeError: for a key that cannot be a map key (a list).
    """
    if isinstance(key, PebbleUndefined):
        return key
    if isinstance(key, str):
        check_name(key)
    if isinstance(obj, Mapping):
        return _map_item(obj, key, base)
    if isinstance(key, slice) and isinstance(obj, list | tuple | str):
        return obj[key]
    if isinstance(obj, list | tuple):
        index = _as_index(key)
        return _index(obj, index, base, key)
    if isinstance(key, str) and not isinstance(obj, str):
        return get_attribute(obj, key, base)
    return _missing(obj, base, key)


def _map_item(obj: Mapping[Any, Any], key: Any, base: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        pass
    except TypeError as exc:
        raise ExpressionTypeError(f"a {type(key).__name__} cannot be a map key") from exc
    if isinstance(key, int) and not isinstance(key, bool) and str(key) in obj:
        return obj[str(key)]
    return _missing(obj, base, key)


def _as_index(key: Any) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return None


def _index(items: list[Any] | tuple[Any, ...], index: int | None, base: str, key: Any) -> Any:
    if index is not None and 0 <= index < len(items):
        return items[index]
    return _missing(items, base, key)


def _loop_attribute(loop: LoopContext, name: str) -> Any:
    attribute = _LOOP_ATTRIBUTES.get(name)
    if attribute is None:
        return undefined(child_path("loop", name), name)
    return getattr(loop, attribute)


def _missing(obj: Any, base: str, key: Any) -> PebbleUndefined:
    """The undefined value of ``obj[key]``, keeping the first missing segment."""
    if isinstance(obj, PebbleUndefined):
        return undefined(child_path(base or obj.path, key), obj.attribute)
    return undefined(child_path(base, key), str(key))
