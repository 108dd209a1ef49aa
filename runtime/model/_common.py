"""Shared building blocks of the flow model: the spec base, durations, ids."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import msgspec

ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
"""Task, input and output ids (Kestra's rule)."""
FLOW_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_FLOW_ID_LENGTH = 100
MAX_NAMESPACE_LENGTH = 150


class Spec(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Base of every part of a flow document: camelCase keys, keyword-only fields."""


class Duration(timedelta):
    """An ISO-8601 duration (``PT30S``, ``PT0.25s``, ``P1DT2H``), case-insensitive like Java's."""

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse an ISO-8601 duration.

        :raises ValueError: if ``text`` is not one.
        """
        try:
            value = msgspec.convert(text.strip().upper(), timedelta)
        except msgspec.ValidationError:
            raise ValueError(
                f"expected an ISO-8601 duration such as PT30S or PT1M, found {text!r}"
            ) from None
        return cls(seconds=value.total_seconds())

    def iso(self) -> str:
        """This duration in ISO-8601 (``PT1.5S``)."""
        return msgspec.json.encode(timedelta(seconds=self.total_seconds())).decode().strip('"')


def dec_hook(kind: type, value: Any) -> Any:
    """msgspec hook that builds the model's custom types from plain data."""
    if kind is Duration:
        if isinstance(value, str):
            return Duration.parse(value)
        if isinstance(value, timedelta):
            return Duration(seconds=value.total_seconds())
        raise ValueError(f"expected an ISO-8601 duration such as PT30S, found {value!r}")
    raise NotImplementedError(f"no conversion to {kind!r}")


def enc_hook(value: Any) -> Any:
    """msgspec hook that turns the model's custom types into plain data."""
    if isinstance(value, Duration):
        return value.iso()
    raise NotImplementedError(f"cannot encode {type(value)!r}")


def is_template(value: object) -> bool:
    """Whether ``value`` is a string holding an expression to render at run time."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def as_text(value: Any) -> str | None:
    """A scalar as Kestra prints it: booleans in lower case, None kept as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
