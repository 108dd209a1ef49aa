"""The expression engine: Pebble's syntax and semantics as Kestra runs them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from runtime.expressions import (
    ExpressionEngine,
    ExpressionError,
    ExpressionLimitError,
    ExpressionSecurityError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    UndefinedVariableError,
    is_truthy,
)


@pytest.fixture
def engine() -> ExpressionEngine:
    return ExpressionEngine()


def render(engine: ExpressionEngine, template: str, **context: Any) -> str:
    return engine.render(template, context)


def evaluate(engine: ExpressionEngine, expression: str, **context: Any) -> Any:
    return engine.evaluate(expression, context)


# -- Kestra's own test expressions --------------------------------------------------------


def test_ternary_takes_the_true_branch_without_evaluating_the_other(
    engine: ExpressionEngine,
) -> None:
    template = "{{taskrun.attemptsCount == 1 ? 'ok' : ko}}"
    assert render(engine, template, taskrun={"attemptsCount": 1}) == "ok"


def test_ternary_false_branch_with_a_missing_variable_names_it(engine: ExpressionEngine) -> None:
    template = "{{taskrun.attemptsCount == 1 ? 'ok' : ko}}"
    with pytest.raises(UndefinedVariableError) as caught:
        render(engine, template, taskrun={"attemptsCount": 0})
    assert caught.value.name == "ko"
    assert caught.value.expression == template


def test_coalesce_inside_parentheses_then_ternary(engine: ExpressionEngine) -> None:
    template = "{{ (inputs.failed ?? 'NONE') == 'FIRST' ? ko : '0'}}"
    assert render(engine, template, inputs={"failed": None}) == "0"
    assert render(engine, template, inputs={}) == "0"
    with pytest.raises(UndefinedVariableError, match="'ko'"):
        render(engine, template, inputs={"failed": "FIRST"})


def test_equals_operator(engine: ExpressionEngine) -> None:
    template = "{{ taskrun.value equals 'value 2' }}"
    assert render(engine, template, taskrun={"value": "value 2"}) == "true"
    assert render(engine, template, taskrun={"value": "value 1"}) == "false"


def test_concatenation_of_flow_namespace_and_id(engine: ExpressionEngine) -> None:
    flow = {"namespace": "io.kestra.tests", "id": "each"}
    assert render(engine, "{{ flow.namespace ~ '.' ~ flow.id }}", flow=flow) == (
        "io.kestra.tests.each"
    )


def test_nested_loop_output_addressed_by_parent_values(engine: ExpressionEngine) -> None:
    outputs = {"1-1-1_output": {"v1": {"v11": {"v111": {"value": "deep"}}}}}
    parents = [{"taskrun": {"value": "v11"}}, {"taskrun": {"value": "v1"}}]
    template = (
        "{{ outputs['1-1-1_output'][parents[1].taskrun.value]"
        "[parents[0].taskrun.value][taskrun.value].value }}"
    )
    result = render(engine, template, outputs=outputs, parents=parents, taskrun={"value": "v111"})
    assert result == "deep"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, "create"),
        ({"data": {"value": 0}}, "create"),
        ({"data": {"value": 1}}, "update"),
        ({"data": {"value": 2}}, "delete"),
        ({"data": {"value": None}}, "create"),
    ],
)
def test_nested_ternaries_with_coalescing(
    engine: ExpressionEngine, state: dict[str, Any], expected: str
) -> None:
    template = (
        "{{ (outputs.state.data.value ?? 0) == 0 ? 'create' : "
        "( outputs.state.data.value == 1 ? 'update' : 'delete') }}"
    )
    assert render(engine, template, outputs={"state": state}) == expected


class _Hooks:
    """RenderHooks for tests: fixed storage, logs and a virtual clock."""

    def __init__(self) -> None:
        self.logs = [
            {"taskId": "fail", "taskRunId": "tr1", "message": "boom", "level": "ERROR"},
            {"taskId": "other", "taskRunId": "tr2", "message": "bang", "level": "ERROR"},
        ]

    def read(self, uri: str) -> str:
        return f"content of {uri}"

    def file_uri(self, path: str) -> str:
        return f"kestra:///io/kestra/_files/{path}"

    def error_logs(self) -> list[dict[str, Any]]:
        return self.logs

    def now(self) -> datetime:
        return datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def test_error_logs_loop_with_whitespace_control(engine: ExpressionEngine) -> None:
    template = "{%- for log in errorLogs() -%}{{ log.taskId }}: {{ log.message }}\n{%- endfor -%}"
    assert engine.render(template, {}, _Hooks()) == "fail: boomother: bang"


def test_current_each_output_follows_parents_and_taskrun_value(engine: ExpressionEngine) -> None:
    outputs = {"2-1_output": {"outer": {"v42": {"value": "return-v42"}}}}
    context = {
        "outputs": outputs,
        "parents": [{"taskrun": {"value": "outer"}}],
        "taskrun": {"value": "v42"},
    }
    template = "{{ currentEachOutput(outputs['2-1_output']).value }}"
    assert engine.render(template, context) == "return-v42"


def test_current_each_output_with_two_parent_levels_uses_outermost_first(
    engine: ExpressionEngine,
) -> None:
    outputs = {"o": {"a": {"b": {"c": {"value": "abc"}}}}}
    context = {
        "outputs": outputs,
        "parents": [{"taskrun": {"value": "b"}}, {"taskrun": {"value": "a"}}],
        "taskrun": {"value": "c"},
    }
    assert engine.render("{{ currentEachOutput(outputs.o).value }}", context) == "abc"
    assert engine.render("{{ currentEachOutput(outputs.o).missing ?? 'none' }}", context) == "none"


def test_is_defined(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ inputs.crash is defined }}", inputs={"crash": "x"}) == "true"
    assert render(engine, "{{ inputs.crash is defined }}", inputs={}) == "false"
    assert render(engine, "{{ inputs.crash is not defined }}", inputs={}) == "true"


# -- strict variables -----------------------------------------------------------------------


def test_missing_attribute_names_the_dotted_path(engine: ExpressionEngine) -> None:
    template = "{{ outputs.notexists == 2 }}"
    with pytest.raises(UndefinedVariableError) as caught:
        render(engine, template, outputs={})
    assert caught.value.name == "outputs.notexists"
    assert caught.value.attribute == "notexists"
    assert str(caught.value) == (
        "missing variable 'outputs.notexists': Unable to find `notexists` used in the "
        f"expression `{template}` at line 1"
    )


def test_missing_root_is_the_attribute_kestra_names(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        render(engine, "{{inputs.invalid}}")
    assert (caught.value.name, caught.value.attribute) == ("inputs.invalid", "inputs")
    assert "Unable to find `inputs` used in the expression `{{inputs.invalid}}`" in str(
        caught.value
    )


def test_runtime_errors_carry_the_template_line(engine: ExpressionEngine) -> None:
    template = "first\n{% if true %}\n{{ 'x' - 1 }}{% endif %}"
    with pytest.raises(ExpressionTypeError) as caught:
        render(engine, template)
    assert caught.value.line == 3
    assert str(caught.value).endswith("at line 3")
    with pytest.raises(UndefinedVariableError) as missing:
        render(engine, "a\nb\n{{ c.d }}")
    assert missing.value.line == 3


def test_missing_root_variable(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        render(engine, "{{ nothing }}")
    assert caught.value.name == "nothing"


def test_missing_subscript_key_and_list_index(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        render(engine, "{{ outputs['1-2'].x }}", outputs={})
    assert caught.value.name == "outputs['1-2'].x"
    with pytest.raises(UndefinedVariableError) as caught:
        render(engine, "{{ items[5] }}", items=[1, 2])
    assert caught.value.name == "items[5]"


def test_unevaluated_branches_never_fail(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ true ? 'ok' : missing.deep.path }}") == "ok"
    assert render(engine, "{{ false ? missing : 'ok' }}") == "ok"
    assert render(engine, "{% if false %}{{ missing }}{% endif %}done") == "done"
    assert render(engine, "{{ false and missing }}") == "false"
    assert render(engine, "{{ true or missing }}") == "true"


@pytest.mark.parametrize(
    "template",
    [
        "{{ outputs.a.b.c is defined }}",
        "{{ outputs.a.b.c is not null }}",
        "{{ outputs.a.b.c is not empty }}",
        "{{ (outputs.a.b | upper) is defined }}",
    ],
)
def test_tests_see_undefined_chains_as_values(engine: ExpressionEngine, template: str) -> None:
    assert render(engine, template, outputs={}) == "false"


def test_null_and_empty_tests_on_undefined(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ outputs.x.y is null }}", outputs={}) == "true"
    assert render(engine, "{{ outputs.x.y is empty }}", outputs={}) == "true"


def test_defined_is_false_for_null_as_in_pebble(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ value is defined }}", value=None) == "false"
    assert render(engine, "{{ value is null }}", value=None) == "true"


def test_undefined_fails_when_used_by_an_operator_or_filter(engine: ExpressionEngine) -> None:
    for template in ("{{ missing + 1 }}", "{{ missing | upper }}", "{{ [missing] }}"):
        with pytest.raises(UndefinedVariableError):
            render(engine, template)


def test_set_of_an_undefined_value_fails_at_once(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError, match="missing"):
        render(engine, "{% set x = missing %}done")


# -- coalescing -----------------------------------------------------------------------------


def test_null_coalescing(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ outputs.pause.onResume.asked ?? 'MISSING' }}", outputs={}) == (
        "MISSING"
    )
    assert render(engine, "{{ value ?? 'default' }}", value=None) == "default"
    assert render(engine, "{{ value ?? 'default' }}", value=0) == "0"
    assert render(engine, "{{ a ?? b ?? 'last' }}") == "last"
    assert render(engine, "{{ a ?? b ?? 'last' }}", b="b") == "b"


def test_coalescing_catches_a_missing_variable_anywhere_on_its_left(
    engine: ExpressionEngine,
) -> None:
    assert render(engine, "{{ (missing | upper) ?? 'x' }}") == "x"


def test_coalescing_evaluates_the_right_side_only_when_needed(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ 'set' ?? missing }}") == "set"


def test_undefined_coalescing_keeps_null(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ value ??? 'default' }}", value=None) == ""
    assert engine.evaluate("value ??? 'default'", {"value": None}) is None
    assert render(engine, "{{ outputs.x ??? 'default' }}", outputs={}) == "default"


def test_coalescing_binds_tighter_than_filters(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ missing ?? 'abc' | upper }}") == "ABC"


# -- operators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", 3),
        ("7 - 10", -3),
        ("3 * 4", 12),
        ("7 / 2", 3),
        ("-7 / 2", -3),
        ("7.0 / 2", 3.5),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 // 2", 3),
        ("2 ** 10", 1024),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-2 + 5", 3),
        ("+3", 3),
        ("'a' + 1", "a1"),
        ("1 + 'a'", "1a"),
        ("'x' + null", "xnull"),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("[1] + 2", [1, 2]),
        ("[1, 2, 3, 2] - 2", [1, 3, 2]),
        ("[1, 2, 3] - [1, 3]", [2]),
        ("'ab' * 2", "abab"),
        ("'a' ~ 1 ~ true ~ null ~ 1.5", "a1true1.5"),
        ("1 == 1.0", True),
        ("'2' == 2", False),
        ("'6' == '6'", True),
        ("true == 1", False),
        ("null == null", True),
        ("1 != 2", True),
        ("2 > 1", True),
        ("2 >= 2.0", True),
        ("1 < 0.5", False),
        ("1 <= 1", True),
        ("'b' > 'a'", True),
        ("null > 1", False),
        ("'hello' contains 'ell'", True),
        ("[1, 2, 3] contains 2", True),
        ("[1, 2, 3] contains [1, 3]", True),
        ("[1, 2, 3] contains [1, 4]", False),
        ("{'a': 1} contains 'a'", True),
        ("{'a': 1} contains 'b'", False),
        ("null contains 'a'", False),
        ("1 in ['1', '2']", True),
        ("'x' in ['a']", False),
        ("'a' in {'a': 1}", True),
        ("3 not in [1, 2]", True),
        ("not true", False),
        ("not 0", True),
        ("not ''", True),
        ("true and false", False),
        ("true and 'x'", True),
        ("false or 1", True),
        ("1..3", [1, 2, 3]),
        ("'a'..'c'", ["a", "b", "c"]),
        ("null ?? 'x'", "x"),
    ],
)
def test_operators(engine: ExpressionEngine, expression: str, expected: Any) -> None:
    result = evaluate(engine, expression)
    assert result == expected
    assert type(result) is type(expected)


def test_pebble_precedence_of_not_concat_and_filters(engine: ExpressionEngine) -> None:
    assert evaluate(engine, "not 1 == 1") is False  # (not 1) == 1, as in Pebble
    assert evaluate(engine, "'a' ~ 'b' | upper") == "AB"  # ~ binds tighter than |
    assert evaluate(engine, "items | length > 1", items=[1, 2]) is True
    assert evaluate(engine, "1 + items | length", items=[1, 2]) == 3
    assert evaluate(engine, "true or false and false") is True


@pytest.mark.parametrize(
    "expression",
    ["'a' - 1", "'a' * 1.5", "{} > 1", "[1] contains", "1 / 0", "1 % 0", "true + 1", "-'a'"],
)
def test_operator_type_errors(engine: ExpressionEngine, expression: str) -> None:
    with pytest.raises((ExpressionTypeError, ExpressionSyntaxError)):
        evaluate(engine, expression)


def test_non_boolean_conditions_follow_pebble(engine: ExpressionEngine) -> None:
    assert render(engine, "{% if 'false' %}yes{% endif %}") == "yes"  # non-empty string
    assert render(engine, "{{ '' ? 'yes' : 'no' }}") == "no"
    assert render(engine, "{{ null ? 'yes' : 'no' }}") == "no"
    with pytest.raises(ExpressionTypeError, match="null"):
        render(engine, "{% if value %}x{% endif %}", value=None)
    with pytest.raises(ExpressionTypeError):
        render(engine, "{% if items %}x{% endif %}", items=[1])
    with pytest.raises(ExpressionTypeError):
        render(engine, "{{ null and true }}")


def test_float_division_by_zero_is_ieee_as_in_java(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ 1.0 / 0 }} {{ -1 / 0.0 }} {{ 0.0 / 0 }}") == (
        "Infinity -Infinity NaN"
    )


# -- printing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (True, "true"),
        (False, "false"),
        (None, ""),
        (1, "1"),
        (1.0, "1.0"),
        (0.5, "0.5"),
        (1234567.0, "1234567.0"),
        (1e7, "1.0E7"),
        (1.5e-4, "1.5E-4"),
        (-0.0, "-0.0"),
        ("text", "text"),
        ({"a": 1, "b": [True, None, 2.5]}, '{"a":1,"b":[true,null,2.5]}'),
        (["é", "x"], '["é","x"]'),
        ((1, 2), "[1,2]"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2024-01-02T03:04:05.120Z"),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2))),
            "2024-01-02T03:04:05.123456+02:00",
        ),
        (datetime(2024, 1, 2, 3, 4), "2024-01-02T03:04:00"),
        (date(2024, 1, 2), "2024-01-02"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        ({"when": datetime(2024, 1, 2, tzinfo=UTC)}, '{"when":"2024-01-02T00:00:00Z"}'),
    ],
)
def test_printing(engine: ExpressionEngine, value: Any, printed: str) -> None:
    assert render(engine, "{{ value }}", value=value) == printed


def test_printing_an_object_that_is_not_data_fails(engine: ExpressionEngine) -> None:
    with pytest.raises(ExpressionTypeError, match="cannot print"):
        render(engine, "{% for x in [1] %}{{ loop }}{% endfor %}")


def test_template_text_is_kept_verbatim(engine: ExpressionEngine) -> None:
    assert render(engine, "a\n{{ 1 }}\n{% if true %}\nb{% endif %}\n") == "a\n1\n\nb\n"


# -- access ---------------------------------------------------------------------------------


def test_attribute_and_subscript_access(engine: ExpressionEngine) -> None:
    outputs = {"1-2-1_return": {"s1": {"a a": {"value": "spaced"}}}, "t": {"k": {"value": 7}}}
    context = {"outputs": outputs, "taskrun": {"value": "k"}, "parents": [{"taskrun": {"v": 1}}]}
    assert engine.render("{{ outputs['1-2-1_return'].s1['a a'].value }}", context) == "spaced"
    assert engine.render("{{ outputs.t[taskrun.value].value }}", context) == "7"
    assert engine.render("{{ parents[0].taskrun.v }} {{ parents.0.taskrun.v }}", context) == "1 1"


def test_map_keys_win_over_python_attributes(engine: ExpressionEngine) -> None:
    outputs = {"output_values": {"values": {"count": "6"}, "items": 1, "keys": 2}}
    template = "{{ outputs.output_values.values.count == '6' }}"
    assert engine.render(template, {"outputs": outputs}) == "true"
    assert engine.render("{{ outputs.output_values.items }}", {"outputs": outputs}) == "1"


def test_python_attributes_of_values_are_not_reachable(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError, match=r"text\.upper"):
        render(engine, "{{ text.upper() }}", text="abc")
    with pytest.raises(UndefinedVariableError):
        render(engine, "{{ items.append }}", items=[])


def test_list_index_by_numeric_string_and_slices(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ items['1'] }} {{ items[1:] }}", items=["a", "b", "c"]) == (
        'b ["b","c"]'
    )


def test_attribute_of_null_is_undefined(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ value.x ?? 'none' }}", value=None) == "none"
    with pytest.raises(UndefinedVariableError, match=r"value\.x"):
        render(engine, "{{ value.x }}", value=None)


# -- tags -----------------------------------------------------------------------------------


def test_for_loop_variables_are_pebble_zero_based(engine: ExpressionEngine) -> None:
    template = (
        "{% for x in items %}{{ loop.index }}/{{ loop.revindex }}/{{ loop.length }}"
        "{{ loop.first ? 'F' : '' }}{{ loop.last ? 'L' : '' }} {% endfor %}"
    )
    assert render(engine, template, items=["a", "b", "c"]) == "0/2/3F 1/1/3 2/0/3L "


def test_for_over_a_map_yields_entries(engine: ExpressionEngine) -> None:
    template = "{% for e in m %}{{ e.key }}={{ e.value }};{% endfor %}"
    assert render(engine, template, m={"a": 1, "b": [2]}) == "a=1;b=[2];"


def test_for_over_null_renders_nothing_and_else(engine: ExpressionEngine) -> None:
    assert render(engine, "{% for x in v %}{{ x }}{% endfor %}.", v=None) == "."
    assert render(engine, "{% for x in [] %}x{% else %}empty{% endfor %}") == "empty"
    with pytest.raises(ExpressionTypeError, match="iterate"):
        render(engine, "{% for x in 'abc' %}{{ x }}{% endfor %}")


def test_if_elseif_else_and_set(engine: ExpressionEngine) -> None:
    template = (
        "{% set n = value * 2 %}{% if n > 10 %}big{% elseif n > 4 %}mid"
        "{% elif n > 2 %}small{% else %}tiny{% endif %}"
    )
    assert [render(engine, template, value=v) for v in (6, 3, 2, 1)] == [
        "big",
        "mid",
        "small",
        "tiny",
    ]


def test_whitespace_control_and_comments(engine: ExpressionEngine) -> None:
    template = "a  {{- 1 -}}  b {# a comment #}c\n{%- if true %} d{% endif %}"
    assert render(engine, template) == "a1b c d"


def test_raw_blocks_are_not_rendered(engine: ExpressionEngine) -> None:
    assert render(engine, "{% raw %}{{ not.rendered }}{% endraw %}") == "{{ not.rendered }}"


def test_macros_and_filter_blocks(engine: ExpressionEngine) -> None:
    template = (
        "{% macro greet(name) %}hi {{ name }}{% endmacro %}{{ greet('bob') }} "
        "{% filter upper %}loud{% endfilter %}"
    )
    assert render(engine, template) == "hi bob LOUD"


def test_literals(engine: ExpressionEngine) -> None:
    assert evaluate(engine, "[1, 'a', null, TRUE, FALSE, NULL, none]") == [
        1,
        "a",
        None,
        True,
        False,
        None,
        None,
    ]
    assert evaluate(engine, "{'a': 1 > 0 ? 'y' : 'n'}") == {"a": "y"}


def test_functions_are_not_shadowed_by_variables(engine: ExpressionEngine) -> None:
    assert render(engine, "{{ range(1, 2) }} {{ range }}", range="var") == "[1,2] var"
    with pytest.raises(UndefinedVariableError):
        render(engine, "{{ now }}")


# -- the public methods -----------------------------------------------------------------------


def test_text_without_markers_is_returned_unchanged_without_compiling() -> None:
    engine = ExpressionEngine()
    text = "no expression here { } %} }}"
    assert engine.render(text, {}) is text
    assert engine.render_typed(text, {}) is text
    assert engine.cache_info().misses == 0


def test_same_source_compiles_once() -> None:
    engine = ExpressionEngine()
    for value in range(5):
        assert engine.render("{{ v + 1 }}", {"v": value}) == str(value + 1)
    info = engine.cache_info()
    assert (info.misses, info.hits, info.currsize) == (1, 4, 1)
    engine.render("{{ v * 2 }}", {"v": 1})
    assert engine.cache_info().misses == 2
    engine.render("{{ v }}", {"v": 1})  # a plain path needs no compilation at all
    assert engine.cache_info().misses == 2


def test_the_plain_path_fast_path_prints_exactly_like_the_full_path() -> None:
    from datetime import UTC, datetime

    engine = ExpressionEngine()
    values: list[object] = [
        "text", "ünïcode", "", 0, 42, -1.5, 1.0, True, False, None, [1, "a", None],
        {"k": [True, 1.5]}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ]  # fmt: skip
    for value in values:
        context = {"a": {"b": value}}
        fast = engine.render("{{ a.b }}", context)
        full = engine.render("{{ (a.b) }}", context)  # parentheses: not a plain path
        assert fast == full, value


def test_cache_is_bounded_lru() -> None:
    engine = ExpressionEngine(cache_size=2)
    for template in ("{{ 1 }}", "{{ 2 }}", "{{ 3 }}", "{{ 1 }}"):
        engine.render(template, {})
    info = engine.cache_info()
    assert (info.maxsize, info.currsize, info.misses) == (2, 2, 4)


def test_render_value_recurses_into_keys_values_lists_and_tuples(engine: ExpressionEngine) -> None:
    value = {
        "{{ key }}": ["{{ a }}", 3, None, ("{{ a }}", True)],
        "plain": {"nested": "{{ a ~ a }}"},
        7: "x",
    }
    rendered = engine.render_value(value, {"key": "k", "a": "A"})
    assert rendered == {"k": ["A", 3, None, ("A", True)], "plain": {"nested": "AA"}, 7: "x"}


def test_render_value_keeps_the_first_of_colliding_keys(engine: ExpressionEngine) -> None:
    assert engine.render_value({"{{ 'a' }}": 1, "a": 2}, {}) == {"a": 1}


def test_render_typed_returns_the_value(engine: ExpressionEngine) -> None:
    context = {"items": [1, 2], "n": 3, "m": {"a": None}}
    assert engine.render_typed("{{ items }}", context) == [1, 2]
    assert engine.render_typed("  {{ n + 1 }}\n", context) == 4
    assert engine.render_typed("{{ m.a }}", context) is None
    assert engine.render_typed("{{- n -}}", context) == 3
    assert engine.render_typed("{{ '}}' }}", context) == "}}"
    assert engine.render_typed("n={{ n }}", context) == "n=3"
    assert engine.render_typed("{{ n }}{{ n }}", context) == "33"
    assert engine.render_typed("{% if true %}{{ n }}{% endif %}", context) == "3"


def test_render_typed_errors_name_the_template(engine: ExpressionEngine) -> None:
    with pytest.raises(UndefinedVariableError) as caught:
        engine.render_typed("{{ missing }}", {})
    assert caught.value.expression == "{{ missing }}"


def test_evaluate_returns_python_values(engine: ExpressionEngine) -> None:
    context = {"outputs": {"a": {"value": 2}}}
    assert engine.evaluate("outputs.a.value == 2", context) is True
    assert engine.evaluate("outputs.a", context) == {"value": 2}
    with pytest.raises(UndefinedVariableError):
        engine.evaluate("outputs.b", context)
    with pytest.raises(ExpressionSyntaxError):
        engine.evaluate("1 +", context)
    with pytest.raises(ExpressionSyntaxError):
        engine.evaluate("1 2", context)


def test_render_does_not_change_the_context(engine: ExpressionEngine) -> None:
    context: dict[str, Any] = {"items": [3, 1, 2]}
    assert engine.render("{% set x = 1 %}{{ items | sort }}{{ items | reverse }}", context)
    assert context == {"items": [3, 1, 2]}


# -- errors ---------------------------------------------------------------------------------


def test_syntax_errors_carry_the_line(engine: ExpressionEngine) -> None:
    template = "line one\n{{ 1 + }}"
    with pytest.raises(ExpressionSyntaxError) as caught:
        engine.render(template, {})
    assert caught.value.line == 2
    assert caught.value.expression == template


@pytest.mark.parametrize(
    "template",
    [
        "{{ x | nosuchfilter }}",
        "{{ x is nosuchtest }}",
        "{% nosuchtag %}",
        "{{ 'unclosed }}",
        "{% if true %}",
        "{{ a if b else c }}",
        "{{ 1 ? 2 }}",
    ],
)
def test_syntax_errors(engine: ExpressionEngine, template: str) -> None:
    with pytest.raises(ExpressionSyntaxError):
        engine.render(template, {"x": 1})


def test_every_error_is_an_expression_error_with_its_source(engine: ExpressionEngine) -> None:
    cases: list[tuple[str, type[ExpressionError]]] = [
        ("{{ missing }}", UndefinedVariableError),
        ("{{ 'a' - 1 }}", ExpressionTypeError),
        ("{{ ''.__class__ }}", ExpressionSecurityError),
        ("{{ range(0, 10000000) }}", ExpressionLimitError),
        ("{{ 1 + }}", ExpressionSyntaxError),
        ("{{ read('x') }}", ExpressionError),
    ]
    for template, error in cases:
        with pytest.raises(error) as caught:
            engine.render(template, {})
        assert caught.value.expression == template
        assert template in str(caught.value)


def test_functions_that_need_hooks_name_themselves(engine: ExpressionEngine) -> None:
    for name, template in [("read", "{{ read('x') }}"), ("errorLogs", "{{ errorLogs() }}")]:
        with pytest.raises(ExpressionError, match=f"'{name}'"):
            engine.render(template, {})


def test_hooks_are_used(engine: ExpressionEngine) -> None:
    hooks = _Hooks()
    assert engine.render("{{ read('kestra:///a.txt') }}", {}, hooks) == (
        "content of kestra:///a.txt"
    )
    assert engine.render("{{ fileURI('data.csv') }}", {}, hooks) == (
        "kestra:///io/kestra/_files/data.csv"
    )
    assert engine.render("{{ now() }}", {}, hooks) == "2024-05-06T07:08:09.123456Z"


def test_hook_failures_become_expression_errors(engine: ExpressionEngine) -> None:
    class Failing(_Hooks):
        def read(self, uri: str) -> str:
            raise FileNotFoundError(uri)

    with pytest.raises(ExpressionError, match="FileNotFoundError"):
        engine.render("{{ read('nope') }}", {}, Failing())


def test_engine_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        ExpressionEngine(max_output_chars=0)


# -- truthiness of rendered conditions --------------------------------------------------------


@pytest.mark.parametrize("rendered", [None, "false", "0", "-0", ""])
def test_falsy_rendered_conditions(rendered: str | None) -> None:
    assert is_truthy(rendered) is False


@pytest.mark.parametrize("rendered", ["true", "1", "False", " false", "0.0", "no", "null", "x"])
def test_truthy_rendered_conditions(rendered: str) -> None:
    assert is_truthy(rendered) is True
