"""What the UI computes before rendering: task runs in tree order, the Gantt's geometry,
the topology's groups and layers, form fields from inputs, file previews, problems at
their line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from runtime.engine import Attempt, Execution, State, StateInfo, TaskRun
from runtime.errors import Problem
from runtime.parsing import parse_flow
from runtime.server.ui._flows_pages import annotate
from runtime.server.ui._forms import fields_of
from runtime.server.ui._gantt import gantt
from runtime.server.ui._outputs import PREVIEW_BYTES, output_tree, preview_file
from runtime.server.ui._topology import topology
from runtime.server.ui._tree import loop_values, task_run_tree

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def info(state: State, start: float, end: float | None = None) -> StateInfo:
    begun = StateInfo.new(State.RUNNING, T0 + timedelta(seconds=start))
    if end is not None:
        begun.move(state, T0 + timedelta(seconds=end))
    return begun


def run(
    run_id: str,
    task_id: str,
    state: StateInfo,
    parent: str | None = None,
    value: str | None = None,
    attempts: list[Attempt] | None = None,
) -> TaskRun:
    return TaskRun(
        run_id,
        "e",
        "ns",
        "f",
        task_id,
        state,
        parent_task_run_id=parent,
        value=value,
        attempts=attempts,
    )


def execution(task_runs: list[TaskRun], state: StateInfo) -> Execution:
    return Execution("e", "ns", "f", 1, state, task_run_list=task_runs)


def test_task_runs_come_in_tree_order_with_their_depth_and_loop_values() -> None:
    runs = [
        run("1", "loop", info(State.SUCCESS, 0, 4)),
        run("2", "after", info(State.SUCCESS, 4, 5)),
        run("3", "body", info(State.SUCCESS, 1, 2), parent="1", value="a"),
        run("4", "inner", info(State.SUCCESS, 1, 2), parent="3", value="x"),
        run("5", "body", info(State.SUCCESS, 2, 3), parent="1", value="b"),
        run("6", "orphan", info(State.SUCCESS, 2, 3), parent="removed"),
    ]
    ordered = [(t.id, depth) for t, depth in task_run_tree(runs)]
    assert ordered == [("1", 0), ("3", 1), ("4", 2), ("5", 1), ("2", 0), ("6", 0)]
    by_id = {t.id: t for t in runs}
    assert loop_values(by_id["4"], by_id) == ["a", "x"]
    assert loop_values(by_id["2"], by_id) == []


def test_the_gantt_puts_each_attempt_on_one_axis_from_start_to_end() -> None:
    retried = [
        Attempt(info(State.FAILED, 2, 4)),
        Attempt(info(State.SUCCESS, 6, 10)),
    ]
    runs = [
        run("1", "first", info(State.SUCCESS, 0, 2), attempts=[Attempt(info(State.SUCCESS, 0, 2))]),
        run("2", "flaky", info(State.SUCCESS, 2, 10), attempts=retried),
    ]
    chart = gantt(execution(runs, info(State.SUCCESS, 0, 10)), now=T0 + timedelta(hours=1))
    first, flaky = chart.rows
    assert [(b.left, b.width, b.state) for b in first.bars] == [(0.0, 20.0, "SUCCESS")]
    assert [(b.left, b.width, b.state) for b in flaky.bars] == [
        (20.0, 20.0, "FAILED"),
        (60.0, 40.0, "SUCCESS"),
    ]
    assert [b.label for b in flaky.bars] == ["attempt 1", "attempt 2"]
    assert chart.total == "10.0s"
    assert [t.left for t in chart.ticks] == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]


def test_a_running_attempt_reaches_now_and_a_flowable_task_run_is_one_bar() -> None:
    now = T0 + timedelta(seconds=8)
    runs = [
        run("1", "group", info(State.RUNNING, 0)),
        run(
            "2",
            "child",
            info(State.RUNNING, 4),
            parent="1",
            attempts=[Attempt(info(State.RUNNING, 4))],
        ),
    ]
    chart = gantt(execution(runs, info(State.RUNNING, 0)), now=now)
    group, child = chart.rows
    assert (group.depth, child.depth) == (0, 1)
    assert [(b.left, b.width, b.label) for b in group.bars] == [(0.0, 100.0, "")]
    assert [(b.left, b.width, b.state) for b in child.bars] == [(50.0, 50.0, "RUNNING")]


TOPOLOGY = """
id: shapes
namespace: ui.layout
tasks:
  - id: start
    type: io.kestra.plugin.core.debug.Return
    format: x
  - id: fan
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {id: left, type: io.kestra.plugin.core.debug.Return, format: l}
      - {id: right, type: io.kestra.plugin.core.debug.Return, format: r}
  - id: choose
    type: io.kestra.plugin.core.flow.If
    condition: "{{ true }}"
    then:
      - {id: yes, type: io.kestra.plugin.core.debug.Return, format: y}
    else:
      - {id: no, type: io.kestra.plugin.core.debug.Return, format: n}
  - id: graph
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {id: a, type: io.kestra.plugin.core.debug.Return, format: a}
      - task: {id: b, type: io.kestra.plugin.core.debug.Return, format: b}
        dependsOn: [a]
      - task: {id: c, type: io.kestra.plugin.core.debug.Return, format: c}
        dependsOn: [a]
      - task: {id: d, type: io.kestra.plugin.core.debug.Return, format: d}
        dependsOn: [b, c]
errors:
  - {id: alert, type: io.kestra.plugin.core.log.Log, message: failed}
"""


def test_the_topology_groups_flowable_tasks_and_lays_out_parallel_and_dag_branches() -> None:
    flow = parse_flow(TOPOLOGY, "shapes.yaml")
    root = topology(flow, None)
    assert [b.label for b in root.branches] == ["tasks", "errors"]
    start, fan, choose, graph = (layer[0] for layer in root.branches[0].layers)
    assert not start.is_group
    assert start.state is None
    assert [[n.task_id for n in layer] for layer in fan.branches[0].layers] == [["left", "right"]]
    assert [b.label for b in choose.branches] == ["then", "else"]
    assert [[n.task_id for n in layer] for layer in graph.branches[0].layers] == [
        ["a"],
        ["b", "c"],
        ["d"],
    ]


def test_each_topology_node_sums_up_the_states_of_its_task_runs() -> None:
    flow = parse_flow(TOPOLOGY, "shapes.yaml")
    runs = [
        run("1", "start", info(State.SUCCESS, 0, 1)),
        run("2", "fan", info(State.RUNNING, 1)),
        run("3", "left", info(State.FAILED, 1, 2), parent="2"),
        run("4", "right", info(State.RUNNING, 1), parent="2"),
    ]
    root = topology(flow, execution(runs, info(State.RUNNING, 0)))
    start, fan, _, _ = (layer[0] for layer in root.branches[0].layers)
    left, right = fan.branches[0].layers[0]
    assert (start.state, fan.state, left.state, right.state) == (
        "SUCCESS",
        "RUNNING",
        "FAILED",
        "RUNNING",
    )
    assert root.state == "RUNNING"
    assert start.counts == [("SUCCESS", 1)]


INPUTS = """
id: form
namespace: ui.layout
inputs:
  - {id: name, type: STRING, description: Who}
  - {id: count, type: INT, min: 1, max: 9, defaults: 3}
  - {id: ratio, type: FLOAT, required: false}
  - {id: flag, type: BOOLEAN, defaults: true}
  - {id: level, type: SELECT, values: [low, high]}
  - {id: tags, type: MULTISELECT, values: [a, b, c]}
  - {id: doc, type: JSON, required: false}
  - {id: upload, type: FILE}
  - {id: secret, type: SECRET, required: false}
  - {id: day, type: DATE, required: false}
  - {id: when, type: STRING, defaults: "{{ execution.id }}"}
tasks:
  - {id: t, type: io.kestra.plugin.core.debug.Return, format: x}
"""


def test_form_fields_follow_the_input_types_and_constraints() -> None:
    fields = {f.id: f for f in fields_of(parse_flow(INPUTS, "form.yaml").inputs)}
    assert (fields["name"].control, fields["name"].required, fields["name"].description) == (
        "text",
        True,
        "Who",
    )
    count = fields["count"]
    assert (count.control, count.step, count.minimum, count.maximum) == ("number", "1", "1", "9")
    assert (count.default, count.required) == ("3", False)
    assert (fields["ratio"].step, fields["ratio"].required) == ("any", False)
    assert (fields["flag"].control, fields["flag"].default) == ("checkbox", "true")
    assert (fields["level"].control, fields["level"].choices) == ("select", ["low", "high"])
    assert fields["tags"].control == "multiselect"
    assert fields["doc"].control == "textarea"
    assert fields["upload"].control == "file"
    assert fields["secret"].control == "password"
    assert fields["day"].control == "date"
    # A default that is an expression is the server's to render: the field stays empty.
    assert (fields["when"].default, fields["when"].required) == ("", False)


def test_outputs_become_a_tree_with_files_recognised(tmp_path: Path) -> None:
    tree = output_tree("", {"n": 1, "ok": True, "none": None, "f": "kestra:///a/b.txt", "l": [1]})
    kinds = {child.key: child.kind for child in tree.children}
    assert kinds == {"n": "number", "ok": "bool", "none": "null", "f": "file", "l": "list"}
    big = output_tree("", {"many": list(range(600))})
    assert (len(big.children[0].children), big.children[0].more) == (500, 100)


def test_previews_show_json_csv_text_and_refuse_binary(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"k": [1, 2]}')
    (tmp_path / "a.csv").write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(50)))
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "a.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "big.txt").write_text("z" * (PREVIEW_BYTES + 10))
    assert preview_file(tmp_path / "a.json").text == '{\n  "k": [\n    1,\n    2\n  ]\n}'
    csv_preview = preview_file(tmp_path / "a.csv")
    assert csv_preview.rows[0] == ["x", "y"]
    assert len(csv_preview.rows) == 21
    assert csv_preview.truncated
    assert preview_file(tmp_path / "a.txt").text == "hello\n"
    assert preview_file(tmp_path / "a.bin").kind == "binary"
    big = preview_file(tmp_path / "big.txt")
    assert (len(big.text), big.truncated, big.size) == (PREVIEW_BYTES, True, PREVIEW_BYTES + 10)


def test_problems_are_shown_at_their_line_with_a_line_around() -> None:
    source = "id: x\nnamespace: y\ntasks:\n  - id: t\n    type: Nope\n"
    lines = annotate(source, [Problem(message="unknown task type", path="tasks[0].type", line=5)])
    assert [(line.number, bool(line.problems)) for line in lines] == [(4, False), (5, True)]
    assert lines[1].text == "    type: Nope"
    assert annotate(source, [Problem(message="no line")]) == []
