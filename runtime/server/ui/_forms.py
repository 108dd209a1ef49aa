"""Form fields generated from typed inputs (a flow's ``inputs``, a Pause's ``onResume``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from runtime.model._inputs import (
    ArrayInput,
    BooleanInput,
    DateInput,
    DateTimeInput,
    DurationInput,
    EnumInput,
    FileInput,
    FloatInput,
    Input,
    IntInput,
    JsonInput,
    MultiselectInput,
    SecretInput,
    SelectInput,
    TimeInput,
    YamlInput,
)


@dataclass(frozen=True)
class Field:
    """One form control: what HTML element, with what constraints."""

    id: str
    label: str
    type: str
    """The input's Kestra type (``STRING``, ``INT``...), shown beside the label."""
    control: str
    """``text``, ``number``, ``checkbox``, ``select``, ``multiselect``, ``textarea``,
    ``file``, ``datetime``, ``date``, ``time`` or ``password``."""
    required: bool
    default: str = ""
    description: str = ""
    choices: list[str] = field(default_factory=list)
    step: str = ""
    minimum: str = ""
    maximum: str = ""
    placeholder: str = ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"PT{value.total_seconds():g}S"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def field_of(spec: Input) -> Field:
    """The form control for one input."""
    default = "" if isinstance(spec.defaults, str) and "{{" in spec.defaults else spec.defaults
    common: dict[str, Any] = {
        "id": spec.id,
        "label": spec.display_name or spec.id,
        "type": spec.input_type.value,
        "required": spec.required and spec.defaults is None,
        "default": _text(default),
        "description": spec.description or "",
    }
    if isinstance(spec, BooleanInput):
        return Field(control="checkbox", **common)
    if isinstance(spec, IntInput | FloatInput):
        return Field(
            control="number",
            step="1" if isinstance(spec, IntInput) else "any",
            minimum=_text(spec.min),
            maximum=_text(spec.max),
            **common,
        )
    if isinstance(spec, EnumInput):
        return Field(control="select", choices=list(spec.values), **common)
    if isinstance(spec, SelectInput):
        if spec.values and not spec.allow_custom_value:
            return Field(control="select", choices=list(spec.values), **common)
        return Field(control="text", choices=list(spec.values or []), **common)
    if isinstance(spec, MultiselectInput):
        choices = spec.choices or []
        if choices and not spec.allow_custom_value:
            return Field(control="multiselect", choices=list(choices), **common)
        return Field(control="textarea", placeholder='["a", "b"]', **common)
    if isinstance(spec, ArrayInput):
        return Field(control="textarea", placeholder='["a", "b"]', **common)
    if isinstance(spec, JsonInput):
        return Field(control="textarea", placeholder='{"key": "value"}', **common)
    if isinstance(spec, YamlInput):
        return Field(control="textarea", placeholder="key: value", **common)
    if isinstance(spec, FileInput):
        return Field(control="file", **common)
    if isinstance(spec, SecretInput):
        return Field(control="password", **common)
    if isinstance(spec, DateTimeInput):
        return Field(control="text", placeholder="2026-12-04T10:00:00Z", **common)
    if isinstance(spec, DateInput):
        return Field(control="date", **common)
    if isinstance(spec, TimeInput):
        return Field(control="text", placeholder="10:30:00", **common)
    if isinstance(spec, DurationInput):
        return Field(control="text", placeholder="PT5M", **common)
    return Field(control="text", **common)


def fields_of(specs: Sequence[Input]) -> list[Field]:
    """The form controls for ``specs``, in their order."""
    return [field_of(spec) for spec in specs]
