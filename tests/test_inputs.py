"""Input coercion and validation: every Kestra input type, and errors that name the input."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from runtime.errors import InputValidationError
from runtime.inputs import InputValueError, coerce_input, resolve_inputs
from runtime.model import (
    ArrayInput,
    BooleanInput,
    DateInput,
    DateTimeInput,
    Duration,
    DurationInput,
    EmailInput,
    EnumInput,
    FileInput,
    FloatInput,
    Input,
    InputType,
    IntInput,
    JsonInput,
    MultiselectInput,
    SecretInput,
    SelectInput,
    StringInput,
    TimeInput,
    UriInput,
    YamlInput,
)


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (StringInput(id="s"), "hello", "hello"),
        (StringInput(id="s"), 12, "12"),
        (StringInput(id="s", validator=r"\d+"), "123", "123"),
        (SecretInput(id="s"), "p4ss", "p4ss"),
        (IntInput(id="i"), "42", 42),
        (IntInput(id="i", min=1, max=5), 5, 5),
        (FloatInput(id="f"), "2.5", 2.5),
        (FloatInput(id="f"), 3, 3.0),
        (BooleanInput(id="b"), "TRUE", True),
        (BooleanInput(id="b"), "false", False),
        (BooleanInput(id="b"), False, False),
        (DateTimeInput(id="d"), "2024-01-31T10:00:00Z", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        (DateTimeInput(id="d"), "2024-01-31T10:00:00", datetime(2024, 1, 31, 10, tzinfo=UTC)),
        (DateInput(id="d"), "2024-01-31", date(2024, 1, 31)),
        (TimeInput(id="t"), "10:15:30", time(10, 15, 30)),
        (DurationInput(id="d"), "PT1M30S", timedelta(seconds=90)),
        (JsonInput(id="j"), '{"a": [1, 2]}', {"a": [1, 2]}),
        (JsonInput(id="j"), {"already": "data"}, {"already": "data"}),
        (YamlInput(id="y"), "a: 1\nb: [x]", {"a": 1, "b": ["x"]}),
        (UriInput(id="u"), "https://example.com/x?y=1", "https://example.com/x?y=1"),
        (EmailInput(id="e"), "ops@example.com", "ops@example.com"),
        (EnumInput(id="e", values=["a", "b"]), "b", "b"),
        (SelectInput(id="s", values=["a", "b"]), "a", "a"),
        (SelectInput(id="s", values=["a"], allow_custom_value=True), "zzz", "zzz"),
        (MultiselectInput(id="m", values=["a", "b", "c"]), '["a", "c"]', ["a", "c"]),
        (MultiselectInput(id="m", options=["a", "b"]), ["b"], ["b"]),
        (ArrayInput(id="a", item_type=InputType.INT), "[1, 2, 3]", [1, 2, 3]),
        (ArrayInput(id="a", item_type=InputType.INT), ["4", 5], [4, 5]),
        (ArrayInput(id="a", item_type=InputType.STRING), ["x"], ["x"]),
        (FileInput(id="f"), "kestra:///ns/flow/file.txt", "kestra:///ns/flow/file.txt"),
    ],
)
def test_values_are_coerced_to_their_type(spec: Input, raw: Any, expected: Any) -> None:
    assert coerce_input(spec, raw) == expected


@pytest.mark.parametrize(
    ("spec", "raw", "expected"),
    [
        (StringInput(id="s", validator=r"\d+"), "12a", "does not match the pattern"),
        (SecretInput(id="s", validator=r"\d+"), "hunter2", "the value does not match"),
        (IntInput(id="i"), "4.5", "expected an integer, found '4.5'"),
        (IntInput(id="i"), True, "expected an integer"),
        (IntInput(id="i", min=10), 3, "must be at least 10, found 3"),
        (IntInput(id="i", max=10), 30, "must be at most 10, found 30"),
        (FloatInput(id="f"), "abc", "expected a number"),
        (BooleanInput(id="b"), "yes", "expected true or false"),
        (DateTimeInput(id="d"), "yesterday", "expected an ISO-8601 date-time"),
        (
            DateTimeInput(id="d", after=datetime(2030, 1, 1, tzinfo=UTC)),
            "2024-01-01T00:00:00Z",
            "must be at least 2030-01-01T00:00:00+00:00",
        ),
        (DateInput(id="d"), "31/01/2024", "expected an ISO-8601 date"),
        (TimeInput(id="t"), "25:00", "expected an ISO-8601 time"),
        (DurationInput(id="d"), "90 seconds", "expected an ISO-8601 duration"),
        (DurationInput(id="d", max=Duration(seconds=60)), "PT2M", "must be at most PT60S"),
        (JsonInput(id="j"), "{not json", "invalid JSON"),
        (YamlInput(id="y"), "a: [1", "invalid YAML"),
        (UriInput(id="u"), "not a uri", "expected a URI"),
        (EmailInput(id="e"), "nobody", "expected an e-mail address"),
        (EnumInput(id="e", values=["a"]), "b", "must be one of 'a'; found 'b'"),
        (SelectInput(id="s", values=["a"]), "b", "must be one of 'a'"),
        (MultiselectInput(id="m", values=["a"]), ["a", "z"], "found 'z'"),
        (ArrayInput(id="a", item_type=InputType.INT), "1,2", "expected a list"),
        (ArrayInput(id="a", item_type=InputType.INT), ["x"], "expected an integer"),
    ],
)
def test_values_that_do_not_fit_are_rejected(spec: Input, raw: Any, expected: str) -> None:
    with pytest.raises(InputValueError, match=expected.replace("(", r"\(").replace("+", r"\+")):
        coerce_input(spec, raw)


def test_resolve_applies_defaults_and_leaves_optional_inputs_none() -> None:
    declared: list[Input] = [
        IntInput(id="n", defaults=3),
        StringInput(id="name"),
        BooleanInput(id="flag", required=False),
    ]
    assert resolve_inputs(declared, {"name": "x"}) == {"n": 3, "name": "x", "flag": None}
    assert resolve_inputs(declared, {"name": "x", "n": "7"})["n"] == 7


def test_resolve_reports_every_input_at_fault_by_name() -> None:
    declared: list[Input] = [
        IntInput(id="n"),
        StringInput(id="name"),
        DateInput(id="day", required=False),
    ]
    with pytest.raises(InputValidationError) as caught:
        resolve_inputs(declared, {"n": "x", "day": "soon", "nam": "typo"}, strict=True)
    assert [p.message for p in caught.value.problems] == [
        "input 'n' (INT): expected an integer, found 'x'",
        "input 'name' is required and has no defaults; pass it",
        "input 'day' (DATE): expected an ISO-8601 date such as 2024-01-31, found 'soon'",
        "input 'nam' is not an input of this flow (inputs: n, name, day); did you mean 'name'?",
    ]


def test_typed_values_pass_through_coercion_unchanged() -> None:
    declared: list[Input] = [
        DurationInput(id="d"),
        DateTimeInput(id="t"),
        JsonInput(id="j"),
        IntInput(id="n"),
    ]
    typed = resolve_inputs(
        declared, {"d": "PT1M", "t": "2024-01-01T00:00:00Z", "j": "[1]", "n": "2"}
    )
    assert resolve_inputs(declared, typed) == typed


def test_undeclared_inputs_are_dropped_unless_strict() -> None:
    assert resolve_inputs([StringInput(id="a")], {"a": "1", "extra": 2}) == {"a": "1"}
