"""The topology of a flow: its tasks as a graph, flowable tasks as groups, each node with
the states of its task runs in an execution."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from runtime.model import Flow
from runtime.model._execution import Execution
from runtime.model._states import State, worst_state
from runtime.model._task import Task
from runtime.server.ui._render import ACTIVE_STATES
from runtime.tasks.core.flow import Dag

_PARALLEL_TYPES = frozenset({"Parallel", "EachParallel"})


@dataclass
class Node:
    """A task: a box, or a group holding branches of its children."""

    task_id: str
    kind: str
    """The task type's short name (``Log``, ``ForEach``...)."""
    state: str | None
    """The state that sums up its task runs (None: it has not run)."""
    counts: list[tuple[str, int]]
    """How many of its task runs are in each state."""
    branches: list[Branch] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        """Whether it holds other tasks."""
        return bool(self.branches)


@dataclass
class Branch:
    """Children of a group under one field (``tasks``, ``then``, ``errors``, ``cases.x``).

    ``layers`` are drawn in sequence; the nodes of one layer side by side (in parallel).
    """

    label: str
    layers: list[list[Node]]


def _summary(states: Sequence[State]) -> tuple[str | None, list[tuple[str, int]]]:
    if not states:
        return None, []
    counts = Counter(s.value for s in states)
    active = [s for s in states if s in ACTIVE_STATES]
    if active:
        # What is happening now matters most: RUNNING over waiting ones.
        order = [State.KILLING, State.RUNNING, State.RETRYING, State.PAUSED, State.QUEUED]
        summary = next((s for s in order if s in active), active[0])
    else:
        summary = worst_state(set(states))
        if summary is State.SUCCESS and State.SKIPPED in states and len(counts) == 1:
            summary = State.SKIPPED
        if summary is State.SUCCESS and State.CANCELLED in states:
            summary = State.CANCELLED
    return summary.value, sorted(counts.items())


def _layers_of_dag(entries: Iterable[tuple[Task, list[str]]]) -> list[list[Task]]:
    """Tasks of a Dag in layers: each task one layer after the last one it depends on."""
    items = list(entries)
    depth: dict[str, int] = {}
    by_id = {task.id: depends for task, depends in items}

    def level(task_id: str, seen: frozenset[str] = frozenset()) -> int:
        if task_id in depth:
            return depth[task_id]
        if task_id in seen:  # a cycle: the parser refuses these; draw it flat anyway
            return 0
        parents = [p for p in by_id.get(task_id, []) if p in by_id]
        value = 1 + max((level(p, seen | {task_id}) for p in parents), default=-1)
        depth[task_id] = value
        return value

    layers: dict[int, list[Task]] = defaultdict(list)
    for task, _ in items:
        layers[level(task.id)].append(task)
    return [layers[i] for i in sorted(layers)]


def topology(flow: Flow, execution: Execution | None) -> Node:
    """The flow as one root group whose branches are ``tasks``, ``errors``, ``finally``
    and ``afterExecution``."""
    states: dict[str, list[State]] = defaultdict(list)
    if execution is not None:
        for task_run in execution.task_run_list:
            states[task_run.task_id].append(task_run.state.current)

    def node(task: Task) -> Node:
        state, counts = _summary(states.get(task.id, []))
        short = task.type.rpartition(".")[2]
        result = Node(task.id, short, state, counts)
        by_field: dict[str, list[Task]] = {}
        for name, child in task.children():
            by_field.setdefault(name, []).append(child)
        for name, children in by_field.items():
            if name == "tasks" and short == "Dag":
                assert isinstance(task, Dag)
                layers = _layers_of_dag((e.task, list(e.depends_on or [])) for e in task.tasks)
                result.branches.append(Branch(name, [[node(t) for t in layer] for layer in layers]))
            elif name == "tasks" and short in _PARALLEL_TYPES:
                result.branches.append(Branch(name, [[node(t) for t in children]]))
            else:
                result.branches.append(Branch(name, [[node(t)] for t in children]))
        return result

    root = Node(flow.id, "Flow", execution.state.current.value if execution else None, [])
    for label, tasks in (
        ("tasks", flow.tasks),
        ("errors", flow.errors),
        ("finally", flow.finally_),
        ("afterExecution", flow.after_execution),
    ):
        if tasks:
            root.branches.append(Branch(label, [[node(t)] for t in tasks]))
    return root
