"""Turning raw input values (CLI strings, JSON, YAML defaults) into typed ones.

Kestra's rules: a value is coerced to the input's type, then checked against the
input's constraints; a missing required input without ``defaults`` is an error; an
optional one is None. Every problem names the input.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import PurePath
from typing import Any
from urllib.parse import urlparse

import yaml

from runtime.errors import InputValidationError, Problem
from runtime.model._common import Duration
from runtime.model._inputs import (
    ArrayInput,
    DateInput,
    DateTimeInput,
    DurationInput,
    EnumInput,
    FloatInput,
    Input,
    InputType,
    IntInput,
    MultiselectInput,
    SecretInput,
    SelectInput,
    StringInput,
    TimeInput,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = frozenset({"true"})
_FALSE = frozenset({"false"})
MAX_YAML_INPUT_CHARS = 1_000_000


class InputValueError(ValueError):
    """A value that does not fit an input's type or constraints (message without the id)."""


def _as_text(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise InputValueError(f"expected text, found {type(raw).__name__} {raw!r}")


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise InputValueError(f"expected an integer, found {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise InputValueError(f"expected an integer, found {raw!r}")


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise InputValueError(f"expected a number, found {raw!r}")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            pass
    raise InputValueError(f"expected a number, found {raw!r}")


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise InputValueError(f"expected true or false, found {raw!r}")


def _to_datetime(raw: Any) -> datetime:
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise InputValueError(
                f"expected an ISO-8601 date-time such as 2024-01-31T10:00:00Z, found {raw!r}"
            ) from None
    else:
        raise InputValueError(f"expected an ISO-8601 date-time, found {raw!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _to_date(raw: Any) -> date:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise InputValueError(f"expected an ISO-8601 date such as 2024-01-31, found {raw!r}")


def _to_time(raw: Any) -> time:
    if isinstance(raw, time):
        return raw
    if isinstance(raw, str):
        try:
            return time.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise InputValueError(f"expected an ISO-8601 time such as 10:15:00, found {raw!r}")


def _to_duration(raw: Any) -> Duration:
    if isinstance(raw, timedelta):
        return Duration(seconds=raw.total_seconds())
    if isinstance(raw, str):
        try:
            return Duration.parse(raw)
        except ValueError as exc:
            raise InputValueError(str(exc)) from None
    raise InputValueError(f"expected an ISO-8601 duration such as PT30S, found {raw!r}")


def _to_json(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputValueError(f"invalid JSON: {exc.msg} at line {exc.lineno}") from None
    return raw


def _to_yaml(raw: Any) -> Any:
    if isinstance(raw, str):
        if len(raw) > MAX_YAML_INPUT_CHARS:
            raise InputValueError(f"YAML value longer than {MAX_YAML_INPUT_CHARS} characters")
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise InputValueError(f"invalid YAML: {exc}") from None
    return raw


def _to_uri(raw: Any) -> str:
    text = _as_text(raw).strip()
    parsed = urlparse(text)
    if not parsed.scheme or not (parsed.netloc or parsed.path):
        raise InputValueError(f"expected a URI with a scheme such as https://..., found {raw!r}")
    return text


def _to_email(raw: Any) -> str:
    text = _as_text(raw).strip()
    if not _EMAIL.match(text):
        raise InputValueError(f"expected an e-mail address, found {raw!r}")
    return text


def _to_list(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        stripped = raw.strip()
        if stripped.startswith("["):
            value = _to_json(stripped)
            if isinstance(value, list):
                return value
        raise InputValueError(f"expected a list (a JSON array such as [1, 2]), found {raw!r}")
    if isinstance(raw, list | tuple):
        return list(raw)
    raise InputValueError(f"expected a list, found {type(raw).__name__} {raw!r}")


_SCALARS: dict[InputType, Callable[[Any], Any]] = {
    InputType.STRING: _as_text,
    InputType.SECRET: _as_text,
    InputType.INT: _to_int,
    InputType.FLOAT: _to_float,
    InputType.BOOLEAN: _to_bool,
    InputType.DATETIME: _to_datetime,
    InputType.DATE: _to_date,
    InputType.TIME: _to_time,
    InputType.DURATION: _to_duration,
    InputType.JSON: _to_json,
    InputType.YAML: _to_yaml,
    InputType.URI: _to_uri,
    InputType.EMAIL: _to_email,
    InputType.ENUM: _as_text,
    InputType.SELECT: _as_text,
    InputType.FILE: lambda raw: str(raw) if isinstance(raw, PurePath) else _as_text(raw),
}


def coerce_type(kind: InputType, raw: Any, item_type: InputType | None = None) -> Any:
    """Coerce ``raw`` to ``kind`` without any constraint check.

    :raises InputValueError: if it does not fit.
    """
    if kind in (InputType.ARRAY, InputType.MULTISELECT):
        items = _to_list(raw)
        inner = item_type or InputType.STRING
        return [coerce_type(inner, item) for item in items]
    return _SCALARS[kind](raw)


def _check_bounds(value: Any, low: Any, high: Any, show: Callable[[Any], str] = str) -> None:
    if low is not None and value < low:
        raise InputValueError(f"must be at least {show(low)}, found {show(value)}")
    if high is not None and value > high:
        raise InputValueError(f"must be at most {show(high)}, found {show(value)}")


def _check_choice(value: str, choices: Sequence[str] | None, custom: bool) -> None:
    if choices is not None and not custom and value not in choices:
        raise InputValueError(f"must be one of {', '.join(map(repr, choices))}; found {value!r}")


def coerce_input(spec: Input, raw: Any) -> Any:
    """Coerce ``raw`` to ``spec``'s type and check its constraints.

    :raises InputValueError: naming what was expected and what was found.
    """
    item_type = spec.item_type if isinstance(spec, ArrayInput | MultiselectInput) else None
    value = coerce_type(spec.input_type, raw, item_type)
    if isinstance(spec, StringInput | SecretInput) and spec.validator is not None:
        if re.fullmatch(spec.validator, value) is None:
            shown = "the value" if isinstance(spec, SecretInput) else repr(value)
            raise InputValueError(f"{shown} does not match the pattern {spec.validator!r}")
    elif isinstance(spec, IntInput | FloatInput):
        _check_bounds(value, spec.min, spec.max)
    elif isinstance(spec, DateTimeInput | DateInput | TimeInput):
        _check_bounds(value, spec.after, spec.before, lambda v: v.isoformat())
    elif isinstance(spec, DurationInput):
        _check_bounds(
            value, spec.min, spec.max, lambda v: Duration(seconds=v.total_seconds()).iso()
        )
    elif isinstance(spec, EnumInput):
        _check_choice(value, spec.values, False)
    elif isinstance(spec, SelectInput):
        _check_choice(value, spec.values, spec.allow_custom_value)
    elif isinstance(spec, MultiselectInput):
        for item in value:
            _check_choice(item, spec.choices, spec.allow_custom_value)
    return value


def resolve_inputs(
    declared: Sequence[Input],
    provided: Mapping[str, Any],
    *,
    strict: bool = False,
    source: str | None = None,
) -> dict[str, Any]:
    """The typed inputs of an execution: provided values, else defaults, else None.

    With ``strict``, a provided input the flow does not declare is an error too (with a
    "did you mean"); otherwise it is dropped, as Kestra does.

    :raises InputValidationError: naming every input at fault, before anything runs.
    """
    problems: list[Problem] = []
    resolved: dict[str, Any] = {}
    for spec in declared:
        if spec.id in provided and provided[spec.id] is not None:
            raw = provided[spec.id]
        elif spec.defaults is not None:
            raw = spec.defaults
        else:
            if spec.required:
                problems.append(
                    _problem(spec.id, "is required and has no defaults; pass it", source)
                )
            resolved[spec.id] = None
            continue
        try:
            resolved[spec.id] = coerce_input(spec, raw)
        except InputValueError as exc:
            problems.append(_problem(spec.id, f"({spec.input_type.value}): {exc}", source))
    if strict:
        known = [spec.id for spec in declared]
        for name in provided:
            if name not in known:
                hint = difflib.get_close_matches(name, known, n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                listed = ", ".join(known) or "none"
                problems.append(
                    _problem(
                        name, f"is not an input of this flow (inputs: {listed}){extra}", source
                    )
                )
    if problems:
        raise InputValidationError(problems)
    return resolved


def _problem(input_id: str, message: str, source: str | None) -> Problem:
    return Problem(message=f"input {input_id!r} {message}", path=f"inputs.{input_id}", file=source)
