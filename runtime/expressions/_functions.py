"""Functions: Pebble's ``range``, ``min``, ``max`` and Kestra's extension.

They live in their own namespace, as in Pebble: ``now()`` calls the function even when
the context has a variable called ``now``, and ``now`` alone is just a variable.
``read``, ``fileURI`` and ``errorLogs`` use the render's :class:`RenderHooks`; ``now``
uses them when given (a virtual clock in tests).
"""

from __future__ import annotations

import json
import random
import uuid as _uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import yaml
from jinja2.runtime import Context

from runtime.expressions import _dates
from runtime.expressions._errors import ExpressionLimitError, ExpressionTypeError
from runtime.expressions._operators import is_number, make_range
from runtime.expressions._state import MAX_RENDER_DEPTH, current, hooks_for

#: Kestra's VariableRenderer.MAX_RENDERING_AMOUNT, for ``render(x, recursive=true)``.
_MAX_RENDERINGS = 100


def now(
    format: Any = "iso",
    timeZone: Any = None,  # noqa: N803
    locale: Any = None,
) -> str:
    """``now(format, timeZone)``: the current time, formatted (``iso`` by default)."""
    state = current()
    hooks = None if state is None else state.hooks
    moment = hooks.now() if hooks is not None else datetime.now(UTC)
    if not isinstance(format, str) or not (timeZone is None or isinstance(timeZone, str)):
        raise ExpressionTypeError("now() needs a string format and time zone")
    zone = _dates.zone_of(timeZone)
    return _dates.format_datetime(_dates.to_datetime(moment, zone), format, zone)


def from_json(json: Any) -> Any:
    """``fromJson(json)`` (alias ``json``): parse a JSON string; null stays null."""
    if json is None:
        return None
    if not isinstance(json, str):
        raise ExpressionTypeError("fromJson expects a string")
    return _parse_json(json)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ExpressionTypeError(f"invalid JSON: {exc}") from exc


def from_yaml(yaml_text: Any) -> Any:
    """``yaml(text)``: parse a YAML string."""
    if yaml_text is None:
        return None
    if not isinstance(yaml_text, str):
        raise ExpressionTypeError("yaml expects a string")
    try:
        return yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        raise ExpressionTypeError(f"invalid YAML: {exc}") from exc


def range_(start: Any, end: Any, increment: Any = 1) -> list[Any]:
    """``range(start, end, increment)``: inclusive of ``end``, at most a million items."""
    return make_range(start, end, increment)


def uuid() -> str:
    """``uuid()``: a random UUID."""
    return str(_uuid.uuid4())


def random_int(lower: Any, upper: Any) -> int:
    """``randomInt(lower, upper)``: an integer with ``lower <= n < upper``."""
    for bound in (lower, upper):
        if not isinstance(bound, int) or isinstance(bound, bool):
            raise ExpressionTypeError("randomInt expects integer bounds")
    if upper < lower:
        raise ExpressionTypeError("randomInt's upper bound is less than its lower bound")
    return lower if upper == lower else random.randrange(lower, upper)


def _extreme(name: str, pick: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*values: Any) -> Any:
        numbers = [value for value in values if value is not None]
        if not numbers or not all(is_number(value) for value in numbers):
            raise ExpressionTypeError(f"{name} expects numbers")
        return pick(numbers)

    apply.__doc__ = f"``{name}(a, b, ...)``: the {name}imum of numbers."
    return apply


def current_each_output(context: Context, outputs: Any) -> Any:
    """``currentEachOutput(outputs.x)``: the output of the current loop iteration.

    Walks the loop-keyed output with each parent's ``taskrun.value`` (outermost first;
    ``parents[0]`` is the innermost) and then the current ``taskrun.value``.
    """
    if not isinstance(outputs, Mapping):
        raise ExpressionTypeError("currentEachOutput expects a map of outputs")
    parents = context.resolve_or_missing("parents")
    current_value: Any = outputs
    for parent in reversed(parents if isinstance(parents, list) else []):
        taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
        if isinstance(taskrun, Mapping):
            current_value = _step(current_value, taskrun.get("value"))
    taskrun = context.resolve_or_missing("taskrun")
    value = taskrun.get("value") if isinstance(taskrun, Mapping) else None
    return _step(current_value, value)


def _step(outputs: Any, key: Any) -> Any:
    if outputs is None:
        return None
    if not isinstance(outputs, Mapping):
        raise ExpressionTypeError("currentEachOutput reached a value that is not a map")
    return outputs.get(key)


def error_logs() -> list[dict[str, Any]]:
    """``errorLogs()``: the execution's ERROR logs (taskId, taskRunId, message...)."""
    return hooks_for("errorLogs").error_logs()


def read(path: Any) -> str:
    """``read(path)``: the content of an internal-storage file."""
    if not isinstance(path, str):
        raise ExpressionTypeError("read expects a path or URI string")
    return hooks_for("read").read(path)


def file_uri(path: Any) -> str:
    """``fileURI(path)``: the internal-storage URI of a namespace file."""
    if not isinstance(path, str):
        raise ExpressionTypeError("fileURI expects a path string")
    return hooks_for("fileURI").file_uri(path)


def render(toRender: Any, recursive: Any = True) -> Any:  # noqa: N803
    """``render(text, recursive=true)``: render a value holding expressions.

    Strings are rendered with the variables of the current render (again and again until
    they stop changing when ``recursive``); maps and lists are rendered item by item.
    """
    if not isinstance(recursive, bool):
        raise ExpressionTypeError("render's recursive argument must be a boolean")
    state = current()
    if state is None:
        raise ExpressionTypeError("render() can only be used while rendering")
    if state.depth >= MAX_RENDER_DEPTH:
        raise ExpressionLimitError(f"render() nested more than {MAX_RENDER_DEPTH} times")
    return _render_object(toRender, recursive)


def render_once(toRender: Any) -> Any:  # noqa: N803
    """``renderOnce(text)``: ``render(text, recursive=false)``."""
    return render(toRender, False)


def _render_object(value: Any, recursive: bool) -> Any:
    if isinstance(value, Mapping):
        return {
            _render_object(key, recursive): _render_object(item, recursive)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_render_object(item, recursive) for item in value]
    if isinstance(value, str):
        return _render_text(value, recursive)
    return value


def _render_text(text: str, recursive: bool) -> str:
    state = current()
    assert state is not None
    state.depth += 1
    try:
        rendered = state.renderer(text, state.variables)
        for _ in range(_MAX_RENDERINGS if recursive else 0):
            if rendered == text:
                return rendered
            text, rendered = rendered, state.renderer(rendered, state.variables)
        if recursive and rendered != text:
            raise ExpressionLimitError("too many rendering attempts")
        return rendered
    finally:
        state.depth -= 1


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "currentEachOutput": current_each_output,
    "errorLogs": error_logs,
    "fileURI": file_uri,
    "fromJson": from_json,
    "json": from_json,
    "max": _extreme("max", max),
    "min": _extreme("min", min),
    "now": now,
    "randomInt": random_int,
    "range": range_,
    "read": read,
    "render": render,
    "renderOnce": render_once,
    "uuid": uuid,
    "yaml": from_yaml,
}
