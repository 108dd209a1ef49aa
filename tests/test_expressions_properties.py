"""Properties of the expression engine over generated values and templates."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.expressions import ExpressionEngine, ExpressionError

ENGINE = ExpressionEngine()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_printed_collections_are_json_of_the_value(value: Any) -> None:
    printed = ENGINE.render("{{ value }}", {"value": [value]})
    assert json.loads(printed) == [value]


@given(st.integers(-(10**9), 10**9), st.integers(-(10**9), 10**9).filter(bool))
def test_integer_division_and_remainder_follow_java(left: int, right: int) -> None:
    quotient = ENGINE.evaluate("a / b", {"a": left, "b": right})
    remainder = ENGINE.evaluate("a % b", {"a": left, "b": right})
    assert quotient * right + remainder == left
    assert abs(remainder) < abs(right)
    assert remainder == 0 or (remainder > 0) == (left > 0)


@given(st.text(max_size=40))
def test_text_without_markers_is_returned_as_is(text: str) -> None:
    if "{{" in text or "{%" in text or "{#" in text:
        return
    assert ENGINE.render(text, {}) == text


@settings(max_examples=300)
@given(st.text(alphabet="{}%#|?:.~()[]'\"abx01 =!<>+-*/_", max_size=30))
def test_any_template_renders_or_raises_an_expression_error(template: str) -> None:
    try:
        result = ENGINE.render(template, {"a": {"b": 1}, "x": "x"})
    except ExpressionError:
        return
    assert isinstance(result, str)
