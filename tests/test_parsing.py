"""Flow parsing and validation: what is accepted, and how problems are reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runtime.errors import FlowValidationError, Problem
from runtime.model import (
    ConstantRetry,
    Duration,
    ExponentialRetry,
    Flow,
    InputType,
    IntInput,
    LogLevel,
    RetryBehavior,
    ScheduleTrigger,
    SelectInput,
)
from runtime.parsing import YamlLimits, load_flow, parse_flow
from runtime.tasks.core.flow import Dag, ForEach, If, Pause, Sequential, Switch
from runtime.tasks.core.log import Log
from tests.conformance import conformance_dir, conformance_flows


def flow(text: str) -> Flow:
    return parse_flow(textwrap.dedent(text), "flow.yaml")


def problems(text: str, limits: YamlLimits | None = None) -> list[Problem]:
    with pytest.raises(FlowValidationError) as caught:
        parse_flow(textwrap.dedent(text), "flow.yaml", limits=limits)
    return caught.value.problems


def messages(text: str) -> list[str]:
    return [str(p) for p in problems(text)]


MINIMAL = """\
id: hello
namespace: company.team
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_a_minimal_flow() -> None:
    parsed = flow(MINIMAL)
    assert (parsed.id, parsed.namespace, parsed.uid) == (
        "hello",
        "company.team",
        "company.team.hello",
    )
    [task] = parsed.tasks
    assert isinstance(task, Log)
    assert task.message == "hi"
    assert task.level is LogLevel.INFO


def test_every_top_level_part_is_understood() -> None:
    parsed = flow(
        """
        id: full
        namespace: company.team
        revision: 3
        description: everything
        labels:
          team: data
          tier: 1
        inputs:
          - id: n
            type: INT
            defaults: 3
            min: 1
          - id: choice
            type: SELECT
            values: [a, b]
        variables:
          greeting: hello
        tasks:
          - id: loop
            type: io.kestra.plugin.core.flow.ForEach
            values: "{{ range(1, inputs.n) }}"
            concurrencyLimit: 0
            tasks:
              - id: inner
                type: io.kestra.plugin.core.debug.Return
                format: "{{ taskrun.value }}"
        errors:
          - id: on-error
            type: io.kestra.plugin.core.log.Log
            message: failed
        finally:
          - id: always
            type: io.kestra.plugin.core.log.Log
            message: done
        afterExecution:
          - id: after
            type: io.kestra.plugin.core.log.Log
            message: after
        outputs:
          - id: result
            type: STRING
            value: "{{ outputs.inner }}"
        retry:
          type: exponential
          interval: PT1S
          maxInterval: PT1M
          maxAttempts: 4
          behavior: CREATE_NEW_EXECUTION
        concurrency:
          limit: 2
          behavior: CANCEL
        triggers:
          - id: nightly
            type: io.kestra.plugin.core.trigger.Schedule
            cron: "0 2 * * *"
            timezone: Europe/Paris
        disabled: false
        """
    )
    assert parsed.revision == 3
    assert parsed.labels == {"team": "data", "tier": "1"}
    assert isinstance(parsed.inputs[0], IntInput)
    assert parsed.inputs[0].defaults == 3
    assert isinstance(parsed.inputs[1], SelectInput)
    loop = parsed.tasks[0]
    assert isinstance(loop, ForEach)
    assert loop.concurrency_limit == 0
    assert [t.id for t in loop.tasks] == ["inner"]
    assert [t.id for t in parsed.all_tasks()] == ["loop", "inner", "on-error", "always", "after"]
    assert parsed.outputs[0].type is InputType.STRING
    assert isinstance(parsed.retry, ExponentialRetry)
    assert parsed.retry.attempts_limit == 4
    assert parsed.retry.behavior is RetryBehavior.CREATE_NEW_EXECUTION
    assert parsed.concurrency is not None
    assert parsed.concurrency.limit == 2
    assert isinstance(parsed.triggers[0], ScheduleTrigger)
    assert parsed.find_task("inner") is loop.tasks[0]


def test_labels_as_a_list_of_key_value() -> None:
    parsed = flow(MINIMAL + "labels:\n  - key: a\n    value: b\n  - key: c\n    value: true\n")
    assert parsed.labels == {"a": "b", "c": "true"}


def test_durations_are_iso_8601_and_case_insensitive() -> None:
    parsed = flow(
        MINIMAL.replace(
            "message: hi",
            "message: hi\n    timeout: PT1m\n    retry:\n      type: constant\n"
            "      interval: PT0.25s\n      maxAttempt: 3\n      maxDuration: P1DT2H",
        )
    )
    task = parsed.tasks[0]
    assert task.timeout == Duration(minutes=1)
    assert isinstance(task.retry, ConstantRetry)
    assert task.retry.interval == Duration(milliseconds=250)
    assert task.retry.max_duration == Duration(days=1, hours=2)


def test_flowable_children_of_every_shape() -> None:
    parsed = flow(
        """
        id: shapes
        namespace: t
        tasks:
          - id: if
            type: io.kestra.plugin.core.flow.If
            condition: "{{ true }}"
            then:
              - {id: yes, type: io.kestra.plugin.core.log.Log, message: y}
            else:
              - {id: no, type: io.kestra.plugin.core.log.Log, message: n}
          - id: switch
            type: io.kestra.plugin.core.flow.Switch
            value: "{{ 1 }}"
            cases:
              1:
                - {id: one, type: io.kestra.plugin.core.log.Log, message: "1"}
            defaults:
              - {id: other, type: io.kestra.plugin.core.log.Log, message: "?"}
          - id: dag
            type: io.kestra.plugin.core.flow.Dag
            tasks:
              - task: {id: first, type: io.kestra.plugin.core.log.Log, message: a}
              - task: {id: second, type: io.kestra.plugin.core.log.Log, message: b}
                dependsOn: [first]
          - id: pause
            type: io.kestra.plugin.core.flow.Pause
            onResume:
              - {id: approved, type: BOOLEAN}
        """
    )
    branch, switch, dag, pause = parsed.tasks
    assert isinstance(branch, If)
    assert ([t.id for t in branch.then], [t.id for t in branch.else_]) == (["yes"], ["no"])
    assert isinstance(switch, Switch)
    assert list(switch.cases) == ["1"]
    assert isinstance(dag, Dag)
    assert dag.tasks[1].depends_on == ["first"]
    assert isinstance(pause, Pause)
    assert pause.on_resume[0].id == "approved"
    assert [t.id for t in parsed.all_tasks()] == [
        "if", "yes", "no", "switch", "one", "other", "dag", "first", "second", "pause",
    ]  # fmt: skip


def test_older_kestra_type_names_and_short_names_are_accepted() -> None:
    parsed = flow(
        """
        id: aliases
        namespace: t
        tasks:
          - {id: a, type: io.kestra.core.tasks.log.Log, message: a}
          - {id: b, type: Log, message: b}
          - id: c
            type: io.kestra.core.tasks.flows.Sequential
            tasks: [{id: d, type: io.kestra.core.tasks.debugs.Return, format: x}]
        """
    )
    assert [type(t).__name__ for t in parsed.all_tasks()] == ["Log", "Log", "Sequential", "Return"]


def test_disabled_tasks_are_left_out() -> None:
    parsed = flow(MINIMAL + "  - {id: off, type: Log, message: x, disabled: true}\n")
    assert [t.id for t in parsed.tasks] == ["say"]


def test_plugin_defaults_fill_and_forced_defaults_override() -> None:
    parsed = flow(
        MINIMAL
        + """\
  - {id: loud, type: io.kestra.plugin.core.log.Log, message: x, level: ERROR}
pluginDefaults:
  - type: io.kestra.plugin.core.log
    values: {level: WARN}
  - type: io.kestra.plugin.core.log.Log
    forced: true
    values: {description: set by default}
"""
    )
    say, loud = parsed.tasks
    assert isinstance(say, Log)
    assert isinstance(loud, Log)
    assert (say.level, loud.level) == (LogLevel.WARN, LogLevel.ERROR)
    assert say.description == loud.description == "set by default"


def test_scalars_are_accepted_where_text_is_expected() -> None:
    parsed = flow(MINIMAL.replace("message: hi", "message: 42\n    runIf: true"))
    task = parsed.tasks[0]
    assert isinstance(task, Log)
    assert (task.message, task.run_if) == ("42", "true")


# -- problems ---------------------------------------------------------------------------


def test_every_problem_names_file_line_column_and_path() -> None:
    [problem] = problems(
        """
        id: f
        namespace: t
        tasks:
          - id: a
            type: Log
            message: x
            retry:
              type: constant
              interval: soon
        """
    )
    assert problem.file == "flow.yaml"
    assert (problem.line, problem.column) == (10, 17)  # the text starts with a blank line
    assert problem.path == "tasks[0].retry.interval"
    assert "expected an ISO-8601 duration" in problem.message
    assert "'soon'" in problem.message


def test_several_problems_are_reported_at_once() -> None:
    found = messages(
        """
        id: bad flow
        namespace: t
        inputz: []
        tasks:
          - id: a
            type: io.kestra.plugin.core.debug.Retrun
          - id: b
            type: Log
            mesage: hi
          - id: c
            type: Log
            message: x
            level: WARNING
        """
    )
    assert found == [
        "flow.yaml:4:1: inputz: unknown property 'inputz'; did you mean 'inputs'?",
        "flow.yaml:2:5: id: invalid id 'bad flow': must match ^[a-zA-Z0-9][a-zA-Z0-9._-]*$",
        "flow.yaml:7:11: tasks[0].type: unknown task type 'io.kestra.plugin.core.debug.Retrun'; "
        "did you mean 'io.kestra.plugin.core.debug.Return' or 'io.kestra.plugin.core.debug.Echo'?",
        "flow.yaml:10:5: tasks[1].mesage: unknown property 'mesage'; did you mean 'message'?",
        "flow.yaml:8:5: tasks[1]: missing required property 'message'",
        "flow.yaml:14:12: tasks[2].level: expected one of TRACE, DEBUG, INFO, WARN, ERROR, "
        "found text 'WARNING'; did you mean 'WARN'?",
    ]


def test_duplicate_task_ids_anywhere_in_the_tree() -> None:
    [problem] = problems(
        """
        id: f
        namespace: t
        tasks:
          - id: same
            type: Log
            message: x
        errors:
          - id: wrapper
            type: Sequential
            tasks:
              - {id: same, type: Log, message: y}
        """
    )
    assert problem.path == "errors[0].tasks[0].id"
    assert problem.message == "duplicate task id 'same' (first at tasks[0], line 5)"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("tasks: []", "tasks: must list at least one task"),
        ("tasks:\n  - {id: s, type: Sequential}", "tasks[0].tasks: must list at least one task"),
        ("tasks:\n  - {id: 'bad id', type: Log, message: x}", "task id is 'bad id'"),
        ("tasks:\n  - {id: x, message: y}", "missing required property 'type'"),
        ("tasks:\n  - {id: p, type: Pause, delay: soon}", "tasks[0].delay: expected an ISO-8601"),
        (
            "tasks:\n  - {id: s, type: Sleep, duration: PT1S}\nconcurrency: {limit: 0}",
            "concurrency.limit: must be at least 1",
        ),
        (
            "tasks:\n  - {id: d, type: Dag, tasks: [{task: {id: a, type: Log, message: x},"
            " dependsOn: [b]}]}",
            "'b' is not a task of this Dag",
        ),
        (
            "tasks:\n  - id: d\n    type: Dag\n    tasks:\n"
            "      - {task: {id: a, type: Log, message: x}, dependsOn: [b]}\n"
            "      - {task: {id: b, type: Log, message: x}, dependsOn: [a]}",
            "dependencies form a cycle: a -> b -> a",
        ),
        (
            "tasks:\n  - {id: a, type: Log, message: x, retry: {type: constant, interval: PT1S,"
            " maxAttempt: 2, maxAttempts: 3}}",
            "set either maxAttempt or maxAttempts, not both",
        ),
        (
            "tasks:\n  - {id: a, type: Log, message: x, retry: {type: constnt, interval: PT1S}}",
            "unknown type 'constnt'; expected one of constant, exponential, random; "
            "did you mean 'constant'?",
        ),
        (
            "inputs:\n  - {id: n, type: INT, defaults: abc}\ntasks:\n  - {id: a, type: Log, "
            "message: x}",
            "inputs[0].defaults: defaults do not fit the input: expected an integer",
        ),
        (
            "inputs:\n  - {id: n, type: STRNG}\ntasks:\n  - {id: a, type: Log, message: x}",
            "did you mean 'STRING'?",
        ),
        (
            "inputs:\n  - {id: n, type: STRING, validator: '(['}\ntasks:\n"
            "  - {id: a, type: Log, message: x}",
            "inputs[0].validator: invalid regular expression",
        ),
        (
            "tasks:\n  - {id: a, type: Log, message: x}\ntriggers:\n"
            "  - {id: t, type: io.kestra.plugin.core.trigger.Schedule, cron: '* * *'}",
            "triggers[0].cron: invalid cron expression",
        ),
        (
            "tasks:\n  - {id: a, type: Log, message: x}\ntriggers:\n"
            "  - {id: t, type: io.kestra.plugin.core.trigger.Schedule, cron: '@daily',"
            " timezone: Mars/Olympus}",
            "unknown time zone 'Mars/Olympus'",
        ),
        ("tasks:\n  - {id: a, type: Log, message: x}\nlabels: 3", "labels must be a mapping"),
    ],
)
def test_invalid_documents(snippet: str, expected: str) -> None:
    text = "id: f\nnamespace: t\n" + snippet + "\n"
    found = messages(text)
    assert any(expected in message for message in found), found


def test_missing_id_and_namespace() -> None:
    found = messages("tasks:\n  - {id: a, type: Log, message: x}\n")
    assert "flow.yaml:1:1: missing required property 'id'" in found
    assert "flow.yaml:1:1: missing required property 'namespace'" in found


def test_a_document_that_is_not_a_mapping() -> None:
    [problem] = problems("- just\n- a list\n")
    assert "a flow must be a mapping" in problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: a\n  bad: indent\n", "invalid YAML"),
        ("id: !!python/object/apply:os.system ['true']\n", "is not allowed"),
        ("a: 1\na: 2\n", "duplicate key 'a' (first at line 1)"),
        ("id: a\n---\nid: b\n", "invalid YAML"),
    ],
)
def test_unsafe_or_broken_yaml(text: str, expected: str) -> None:
    [problem] = problems(text)
    assert expected in problem.message
    assert problem.line is not None


def test_billion_laughs_is_rejected_quickly_in_bounded_memory() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    [problem] = problems("\n".join(lines) + "\n")
    assert "expands to more than" in problem.message


def test_size_and_depth_limits() -> None:
    [too_big] = problems(MINIMAL + "# " + "x" * 200 + "\n", YamlLimits(max_bytes=200))
    assert "the limit is 200" in too_big.message
    deep = "id: f\nnamespace: t\nvariables: " + "[" * 100 + "]" * 100 + "\ntasks: []\n"
    [too_deep] = problems(deep)
    assert "nested deeper than 64 levels" in too_deep.message


def test_load_flow_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FlowValidationError, match="cannot read file"):
        load_flow(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FlowValidationError, match="not UTF-8"):
        load_flow(binary)


# -- the conformance corpus -------------------------------------------------------------


def test_the_conformance_corpus_is_present() -> None:
    assert len(list((conformance_dir() / "flows").glob("*.yaml"))) >= 70


@pytest.mark.parametrize("path", conformance_flows(), ids=lambda p: p.stem)
def test_every_conformance_flow_parses(path: Path) -> None:
    parsed = load_flow(path)
    assert parsed.id == path.stem
    assert parsed.namespace == "io.kestra.tests"
    assert isinstance(parsed.tasks[0].id, str)


def test_sequential_is_registered_under_its_kestra_name() -> None:
    from runtime.tasks import registry

    assert registry.lookup("io.kestra.plugin.core.flow.Sequential") is Sequential
    assert registry.canonical_name(Sequential) == "io.kestra.plugin.core.flow.Sequential"
