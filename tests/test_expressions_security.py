"""The sandbox: template-injection payloads, and the resource limits."""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from runtime.expressions import (
    ExpressionEngine,
    ExpressionError,
    ExpressionLimitError,
    ExpressionSecurityError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    UndefinedVariableError,
)

PAYLOADS_FILE = Path(__file__).parent / "data" / "expression_injection_payloads.txt"
PAYLOADS = [line for line in PAYLOADS_FILE.read_text().splitlines() if line.strip()]
TYPED_ERRORS = (
    ExpressionSecurityError,
    UndefinedVariableError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    ExpressionLimitError,
)
LEAK_MARKERS = ("<class", "<function", "<module", "<built-in", " at 0x", "Template")


def _failure(engine: ExpressionEngine, payload: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        engine.render(payload, {"x": {"a": 1}})
    return caught.value


def test_the_corpus_is_large_enough() -> None:
    assert len(PAYLOADS) >= 40


@pytest.mark.parametrize("payload", PAYLOADS)
def test_injection_payload_fails_with_a_typed_error_and_leaks_nothing(payload: str) -> None:
    error = _failure(ExpressionEngine(), payload)
    assert isinstance(error, TYPED_ERRORS)
    assert error.expression == payload
    problem = error.problem
    assert not any(marker in problem for marker in LEAK_MARKERS), problem


def test_most_payloads_are_security_errors() -> None:
    engine = ExpressionEngine()
    kinds = Counter(type(_failure(engine, payload)).__name__ for payload in PAYLOADS)
    assert kinds["ExpressionSecurityError"] >= 0.8 * len(PAYLOADS), kinds


@pytest.mark.parametrize("name", ["cycler", "joiner", "lipsum", "namespace", "dict", "range"])
def test_jinja_globals_do_not_exist(name: str) -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        ExpressionEngine().render("{{ " + name + " }}", {})
    assert caught.value.name == name


def test_map_keys_named_like_python_internals_stay_readable() -> None:
    context = {"x": {"format": "csv", "mro": 1, "_id": "abc"}}
    template = "{{ x.format }} {{ x.mro }} {{ x._id }}"
    assert ExpressionEngine().render(template, context) == "csv 1 abc"


# -- limits ---------------------------------------------------------------------------------


def test_output_size_limit() -> None:
    engine = ExpressionEngine(max_output_chars=10_000)
    template = "{% for i in range(1, 1000) %}{{ 'x' * 100 }}{% endfor %}"
    with pytest.raises(ExpressionLimitError, match="output"):
        engine.render(template, {})
    assert engine.render("{% for i in range(1, 10) %}{{ 'x' * 100 }}{% endfor %}", {})


def test_captured_blocks_are_size_limited() -> None:
    engine = ExpressionEngine(max_output_chars=10_000)
    big = "y" * 5_000
    templates = [
        "{% set s %}{% for i in range(1, 100) %}{{ big }}{% endfor %}{% endset %}",
        "{% macro m() %}{% for i in range(1, 100) %}{{ big }}{% endfor %}{% endmacro %}{{ m() }}",
        "{% filter upper %}{% for i in range(1, 100) %}{{ big }}{% endfor %}{% endfilter %}",
    ]
    for template in templates:
        with pytest.raises(ExpressionLimitError):
            engine.render(template, {"big": big})


def test_render_time_limit_stops_a_clearly_excessive_template() -> None:
    engine = ExpressionEngine(max_render_seconds=0.2)
    template = (
        "{% for i in range(1, 1000000) %}{% for j in range(1, 1000000) %}{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    with pytest.raises(ExpressionLimitError, match="time limit"):
        engine.render(template, {})
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 10**9 * 'a' }}",
        "{{ [1] * 10**9 }}",
        "{{ 10 ** 10 ** 10 }}",
        "{{ 9 ** 999999 }}",
        "{{ range(0, 2000000000) }}",
        "{{ 1..2000000000 }}",
        "{{ range(0, 10000000000, 1) | length }}",
        "{% macro f(n) %}{{ f(n * n) }}{% endmacro %}{{ f(3) }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    ],
)
def test_resource_bombs_fail_fast_in_bounded_memory(template: str) -> None:
    engine = ExpressionEngine()
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionLimitError):
            engine.render(template, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_string_growth_by_concatenation_is_limited() -> None:
    engine = ExpressionEngine(max_output_chars=1_000)
    with pytest.raises(ExpressionLimitError):
        engine.render("{{ s ~ s }}", {"s": "z" * 600})
    with pytest.raises(ExpressionLimitError):
        engine.render("{{ s + s }}", {"s": "z" * 600})
    with pytest.raises(ExpressionLimitError):
        engine.render("{{ items | join(',') }}", {"items": ["z" * 100] * 20})


def test_a_missing_format_key_is_just_missing() -> None:
    engine = ExpressionEngine()
    assert engine.render("{{ inputs.format ?? 'csv' }}", {"inputs": {}}) == "csv"
    with pytest.raises(ExpressionSecurityError):
        engine.render("{{ inputs.mro ?? 'x' }}", {"inputs": {}})


def test_quadratic_list_operators_respect_the_time_limit() -> None:
    engine = ExpressionEngine(max_render_seconds=0.2)
    context = {"items": list(range(200_000))}
    for template in ("{{ items contains items }}", "{{ (items - items) | length }}"):
        started = time.monotonic()
        with pytest.raises(ExpressionLimitError, match="time limit"):
            engine.render(template, context)
        assert time.monotonic() - started < 10
