"""Filters, tests and functions, with Pebble's and Kestra's names and semantics."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from runtime.expressions import (
    ExpressionEngine,
    ExpressionLimitError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    UndefinedVariableError,
)

MOMENT = "2024-03-05T14:07:09.123456Z"


@pytest.fixture
def engine() -> ExpressionEngine:
    return ExpressionEngine()


def value_of(engine: ExpressionEngine, expression: str, **context: Any) -> Any:
    return engine.evaluate(expression, context)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # strings
        ("'Hello' | upper", "HELLO"),
        ("'Hello' | lower", "hello"),
        ("'  \\t hi \\n' | trim", "hi"),
        ("'hello big world' | title", "Hello Big World"),
        ("'  hello World' | capitalize", "  Hello World"),
        ("'Hello World_x' | slugify", "hello-world-x"),
        ("'abcdefgh' | abbreviate(6)", "abc..."),
        ("'abc' | abbreviate(10)", "abc"),
        ("'a,b,,c,,' | split(',')", ["a", "b", "", "c"]),
        ("'a,b,c' | split(',', 2)", ["a", "b,c"]),
        ("'a1b22c' | split('\\\\d+')", ["a", "b", "c"]),
        ("'abc' | split('')", ["a", "b", "c"]),
        ("'a-b' | replace({'-': '+', 'a': 'A'})", "A+b"),
        ("'a1b22' | replace({'(\\\\d+)': '<$1>'}, regexp=true)", "a<1>b<22>"),
        ("['x-1', {'k': 'y-2'}] | replace({'-': '_'})", ["x_1", {"k": "y_2"}]),
        ("'hello' | startsWith('he')", True),
        ("'hello' | endsWith(value='lo')", True),
        ("'a.b.c' | substringBefore('.')", "a"),
        ("'a.b.c' | substringAfter('.')", "b.c"),
        ("'a.b.c' | substringBeforeLast('.')", "a.b"),
        ("'a.b.c' | substringAfterLast('.')", "c"),
        ("'abc' | substringAfter('x')", ""),
        ("'abc' | substringBefore('x')", "abc"),
        ("\"it's\" | escapeChar('single')", "it\\'s"),
        ("'say \"hi\"' | escapeChar('double')", 'say \\"hi\\"'),
        ("\"it's\" | escapeChar('shell')", "it'\\''s"),
        ("'a\\nb' | indent(2)", "a\n  b"),
        ("'a\\nb' | nindent(2, '-')", "\n--a\n--b"),
        ("'a b&c~' | urlencode", "a+b%26c%7E"),
        ("'a+b%26c' | urldecode", "a b&c"),
        ("'héllo' | base64encode", "aMOpbGxv"),
        ("'aMOpbGxv' | base64decode", "héllo"),
        ("'abc' | md5", "900150983cd24fb0d6963f7d28e17f72"),
        ("'abc' | sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("'abc' | sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("('abc' | sha512)[:8]", "ddaf35a1"),
        # numbers
        ("-3 | abs", 3),
        ("-2.5 | abs", 2.5),
        ("'12' | number", 12),
        ("'1.5' | number", 1.5),
        ("'0x1F' | number", 31),
        ("'10L' | number", 10),
        ("'7' | number('DOUBLE')", 7.0),
        ("'7' | number(type='INT')", 7),
        # collections
        ("'abc' | length", 3),
        ("[1, 2] | length", 2),
        ("{'a': 1} | length", 1),
        ("null | length", 0),
        ("{'a': 1, 'b': 2} | keys", ["a", "b"]),
        ("['x', 'y'] | keys", [0, 1]),
        ("{'a': 1, 'b': 2} | values", [1, 2]),
        ("[3, 1, 2] | first", 3),
        ("[3, 1, 2] | last", 2),
        ("'abc' | first", "a"),
        ("[] | first", None),
        ("[1, null, 'a'] | join(', ')", "1, null, a"),
        ("[1, 2] | join", "12"),
        ("[3, 1, 2] | sort", [1, 2, 3]),
        ("[3, 1, 2] | rsort", [3, 2, 1]),
        ("[1, 2, 3] | reverse", [3, 2, 1]),
        ("[1, 2, 3, 4] | slice(1, 3)", [2, 3]),
        ("'abcdef' | slice(fromIndex=2)", "cdef"),
        ("[1, 2, 3, 4, 5] | chunk(2)", [[1, 2], [3, 4], [5]]),
        ("[1, [2, 3], 4] | flatten", [1, 2, 3, 4]),
        ("[1, 2, 1, 3, 2] | distinct", [1, 2, 3]),
        ("[{'a': 1}, 1, {'a': 1}, 1] | distinct", [{"a": 1}, 1]),
        ("{'a': 1} | merge({'b': 2})", {"a": 1, "b": 2}),
        ("[1] | merge([2])", [1, 2]),
        # defaults and conversions
        ("null | default('d')", "d"),
        ("'  ' | default('d')", "d"),
        ("[] | default('d')", "d"),
        ("'x' | default('d')", "x"),
        ("0 | default('d')", 0),
        ("{'a': [1, true, null]} | toJson", '{"a":[1,true,null]}'),
        ("'x' | json", '"x"'),
        ("null | toJson", "null"),
        ("{'a': 1} | yaml", "a: 1\n"),
    ],
)
def test_filters(engine: ExpressionEngine, expression: str, expected: Any) -> None:
    assert value_of(engine, expression) == expected


def test_filters_return_null_for_null(engine: ExpressionEngine) -> None:
    for name in ("upper", "trim", "date", "keys", "values", "join", "sort", "slugify", "number"):
        assert value_of(engine, f"null | {name}") is None


def test_default_accepts_undefined_input_anywhere_in_its_operand(engine: ExpressionEngine) -> None:
    assert value_of(engine, "missing | default('d')") == "d"
    assert value_of(engine, "outputs.a.b | default('d')", outputs={}) == "d"
    assert value_of(engine, "(outputs.a.b | upper) | default('d')", outputs={}) == "d"


@pytest.mark.parametrize(
    "expression",
    [
        "[1] | upper | abs",
        "'x' | abs",
        "{'a': 1} | join",
        "'x' | values",
        "1 | keys",
        "[1, 'a'] | sort",
        "[1, 2] | slice(1, 5)",
        "[1, 2] | slice(2, 1)",
        "'x' | chunk(0)",
        "[1] | chunk(0)",
        "'x' | replace('not a map')",
        "'x' | escapeChar('weird')",
        "'1.2.3' | number",
        "'%%%' | base64decode",
        "1 | md5",
        "'x' | date('yyyy-#')",
        "'not a date' | date",
        "'2024-01-01' | dateAdd(1, 'LIGHTYEARS')",
        "'2024-01-01' | dateAdd(1.5, 'DAYS')",
        "'2024-01-01' | date(timeZone='Mars/Olympus')",
        "'x' | upper(1)",
    ],
)
def test_filter_type_errors(engine: ExpressionEngine, expression: str) -> None:
    with pytest.raises(ExpressionTypeError):
        value_of(engine, expression)


def test_filters_refuse_undefined_input_and_arguments(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError, match="missing"):
        value_of(engine, "missing | upper")
    with pytest.raises(UndefinedVariableError, match="other"):
        value_of(engine, "'x' | default(other)")


def test_growing_filters_are_bounded() -> None:
    engine = ExpressionEngine(max_output_chars=1000)
    with pytest.raises(ExpressionLimitError):
        engine.render("{{ 'a\\nb' | indent(100000) }}", {})


# -- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (f"'{MOMENT}' | date", "2024-03-05T14:07:09.123456Z"),
        (f"'{MOMENT}' | date('yyyy-MM-dd')", "2024-03-05"),
        (f"'{MOMENT}' | date(\"yyyy-MM-dd'T'HH:mm\")", "2024-03-05T14:07"),
        (f"'{MOMENT}' | date('yyyyMMdd HHmmss SSS')", "20240305 140709 123"),
        (f"'{MOMENT}' | date('EEE, d MMM yy h:mm a')", "Tue, 5 Mar 24 2:07 PM"),
        (f"'{MOMENT}' | date('EEEE MMMM dd D Q QQQ')", "Tuesday March 05 65 1 Q1"),
        (f"'{MOMENT}' | date(\"''HH'h'\")", "'14h"),
        (f"'{MOMENT}' | date('HH:mm XXX', timeZone='Europe/Paris')", "15:07 +01:00"),
        (f"'{MOMENT}' | date('HH:mm xx Z', timeZone='-05:30')", "08:37 -0530 -0530"),
        (f"'{MOMENT}' | date('HH:mm VV z', timeZone='Asia/Tokyo')", "23:07 Asia/Tokyo JST"),
        (f"'{MOMENT}' | date('iso_sec')", "2024-03-05T14:07:09Z"),
        (f"'{MOMENT}' | date('sql')", "2024-03-05 14:07:09.123456"),
        (f"'{MOMENT}' | date('sql_seq')", "2024-03-05 14:07:09"),
        (f"'{MOMENT}' | date('iso_local_date')", "2024-03-05"),
        (f"'{MOMENT}' | date('iso_local_time')", "14:07:09.123456"),
        (f"'{MOMENT}' | date('iso_instant')", "2024-03-05T14:07:09.123456Z"),
        (f"'{MOMENT}' | date('iso_week_date')", "2024-W10-2Z"),
        (f"'{MOMENT}' | date('rfc_1123_date_time')", "Tue, 5 Mar 2024 14:07:09 GMT"),
        (f"'{MOMENT}' | date('short')", "3/5/24, 2:07 PM"),
        ("'2024-03-05T10:00:00+01:00[Europe/Paris]' | date('HH:mm')", "09:00"),
        ("'2024-03-05T10:00:00' | date('HH:mm XXX')", "10:00 Z"),
        ("'2024-03-05' | date('yyyy-MM-dd HH:mm')", "2024-03-05 00:00"),
        ("0 | date('yyyy-MM-dd HH:mm:ss')", "1970-01-01 00:00:00"),
        ("1709647629 | date('iso_sec')", "2024-03-05T14:07:09Z"),
        (
            "'05/03/2024 10:11' | date('yyyy-MM-dd', existingFormat='dd/MM/yyyy HH:mm')",
            "2024-03-05",
        ),
        (f"'{MOMENT}' | timestamp", 1709647629),
        ("'1970-01-01T00:00:01.5Z' | timestampNano", "1500000000"),
    ],
)
def test_date_filter(engine: ExpressionEngine, expression: str, expected: Any) -> None:
    assert value_of(engine, expression) == expected


def test_date_filter_accepts_python_dates(engine: ExpressionEngine) -> None:
    moment = datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)
    assert value_of(engine, "d | date('yyyy-MM-dd HH')", d=moment) == "2024-03-05 14"
    assert value_of(engine, "d | date('yyyy-MM-dd HH')", d=date(2024, 3, 5)) == "2024-03-05 12"


@pytest.mark.parametrize(
    ("amount", "unit", "expected"),
    [
        (1, "DAYS", "2024-01-31T10:00:00.000000Z"),
        (-1, "MONTHS", "2023-12-30T10:00:00.000000Z"),
        (1, "MONTHS", "2024-02-29T10:00:00.000000Z"),
        (13, "MONTHS", "2025-02-28T10:00:00.000000Z"),
        (2, "HOURS", "2024-01-30T12:00:00.000000Z"),
        (90, "MINUTES", "2024-01-30T11:30:00.000000Z"),
        (-30, "SECONDS", "2024-01-30T09:59:30.000000Z"),
        (1500, "MILLIS", "2024-01-30T10:00:01.500000Z"),
        (2, "WEEKS", "2024-02-13T10:00:00.000000Z"),
        (1, "YEARS", "2025-01-30T10:00:00.000000Z"),
        (1, "HALF_DAYS", "2024-01-30T22:00:00.000000Z"),
    ],
)
def test_date_add(engine: ExpressionEngine, amount: int, unit: str, expected: str) -> None:
    template = f"'2024-01-30T10:00:00Z' | dateAdd({amount}, '{unit}')"
    assert value_of(engine, template) == expected


def test_date_add_days_keep_local_time_across_daylight_saving(engine: ExpressionEngine) -> None:
    expression = (
        "'2024-03-30T12:00:00+01:00[Europe/Paris]' | dateAdd(1, 'DAYS', format='iso_sec', "
        "timeZone='Europe/Paris')"
    )
    assert value_of(engine, expression) == "2024-03-31T12:00:00+02:00"


def test_kestra_documented_default_dates(engine: ExpressionEngine) -> None:
    class Clock:
        def read(self, uri: str) -> str:
            return ""

        def file_uri(self, path: str) -> str:
            return path

        def error_logs(self) -> list[dict[str, Any]]:
            return []

        def now(self) -> datetime:
            return datetime(2024, 3, 31, 8, 0, tzinfo=UTC)

    template = "{{ inputs.start_date ?? now() | dateAdd(-1, 'MONTHS') | date('yyyy-MM-dd') }}"
    assert engine.render(template, {"inputs": {}}, Clock()) == "2024-02-29"
    assert engine.render(template, {"inputs": {"start_date": "2024-01-15"}}, Clock()) == (
        "2023-12-15"
    )


# -- tests (is ...) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 is even", True),
        ("3 is even", False),
        ("3 is odd", True),
        ("[1] is iterable", True),
        ("'abc' is iterable", False),
        ("{'a': 1} is iterable", False),
        ("{'a': 1} is map", True),
        ("[1] is map", False),
        ("'{\"a\": 1}' is json", True),
        ("'{nope' is json", False),
        ("'' is empty", True),
        ("'x' is not empty", True),
        ("null is null", True),
        ("1 is not null", True),
    ],
)
def test_tests(engine: ExpressionEngine, expression: str, expected: bool) -> None:
    assert value_of(engine, expression) is expected


def test_even_needs_an_integer(engine: ExpressionEngine) -> None:
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "1.5 is even")
    with pytest.raises(UndefinedVariableError):
        value_of(engine, "missing is even")


# -- functions ------------------------------------------------------------------------------


def test_range_is_inclusive_and_takes_an_increment(engine: ExpressionEngine) -> None:
    assert value_of(engine, "range(1, 5)") == [1, 2, 3, 4, 5]
    assert value_of(engine, "range(0, 10, 3)") == [0, 3, 6, 9]
    assert value_of(engine, "range(5, 1, -2)") == [5, 3, 1]
    assert value_of(engine, "range(3, 1)") == []
    assert value_of(engine, "range(start=1, end=2)") == [1, 2]
    assert value_of(engine, "range('a', 'c')") == ["a", "b", "c"]
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "range(1, 5, 0)")
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "range('ab', 'c')")


def test_json_functions(engine: ExpressionEngine) -> None:
    assert value_of(engine, "fromJson('{\"a\": [1, 2.5, null]}')") == {"a": [1, 2.5, None]}
    assert value_of(engine, "json('[1]')[0]") == 1
    assert value_of(engine, "fromJson(null)") is None
    with pytest.raises(ExpressionTypeError, match="invalid JSON"):
        value_of(engine, "fromJson('{nope')")
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "fromJson(1)")


def test_yaml_function(engine: ExpressionEngine) -> None:
    assert value_of(engine, "yaml('a: [1, 2]')") == {"a": [1, 2]}


def test_uuid_is_random(engine: ExpressionEngine) -> None:
    first, second = value_of(engine, "uuid()"), value_of(engine, "uuid()")
    assert re.fullmatch(r"[0-9a-f-]{36}", first)
    assert first != second


def test_random_int_is_in_range(engine: ExpressionEngine) -> None:
    values = {value_of(engine, "randomInt(1, 4)") for _ in range(200)}
    assert values <= {1, 2, 3}
    assert value_of(engine, "randomInt(2, 2)") == 2
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "randomInt(5, 1)")
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "randomInt(1.5, 3)")


def test_min_and_max(engine: ExpressionEngine) -> None:
    assert value_of(engine, "max(1, 5, 3)") == 5
    assert value_of(engine, "min(1.5, 0, 3)") == 0
    with pytest.raises(ExpressionTypeError):
        value_of(engine, "max('a', 1)")


def test_now_without_hooks_is_the_current_utc_time(engine: ExpressionEngine) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    rendered = value_of(engine, "now(format='iso_sec')")
    assert datetime.fromisoformat(rendered) >= before
    paris = value_of(engine, "now('XXX', timeZone='Europe/Paris')")
    assert paris in {"+01:00", "+02:00"}


def test_render_renders_variables_holding_expressions(engine: ExpressionEngine) -> None:
    context = {
        "vars": {"greeting": "hello {{ name }}", "twice": "{{ vars.greeting }}"},
        "name": "bob",
    }
    assert engine.render("{{ render(vars.greeting) }}", context) == "hello bob"
    assert engine.render("{{ render(vars.twice) }}", context) == "hello bob"
    assert engine.render("{{ renderOnce(vars.twice) }}", context) == "hello {{ name }}"
    assert engine.render("{{ render(vars) }}", context) == (
        '{"greeting":"hello bob","twice":"hello bob"}'
    )


def test_render_of_a_self_referencing_variable_is_bounded(engine: ExpressionEngine) -> None:
    context = {"vars": {"loop": "{{ render(vars.loop) }}"}}
    with pytest.raises(ExpressionLimitError):
        engine.render("{{ render(vars.loop) }}", context)


def test_function_argument_errors_name_the_function(engine: ExpressionEngine) -> None:
    with pytest.raises(ExpressionTypeError, match="function 'uuid'"):
        value_of(engine, "uuid(1)")
    with pytest.raises(UndefinedVariableError, match="missing"):
        value_of(engine, "fromJson(missing)")


def test_unknown_function_is_a_missing_variable(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError, match="nosuchfunction"):
        value_of(engine, "nosuchfunction(1)")


def test_unknown_filter_and_test_are_syntax_errors(engine: ExpressionEngine) -> None:
    with pytest.raises(ExpressionSyntaxError, match="unknown filter 'capitalise'"):
        value_of(engine, "'x' | capitalise")
    with pytest.raises(ExpressionSyntaxError, match="unknown test 'divisibleby'"):
        value_of(engine, "4 is divisibleby(2)")
