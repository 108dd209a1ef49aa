"""From loaded YAML to a validated Flow, collecting every problem on the way."""

from __future__ import annotations

import re
from typing import Any

from runtime.errors import Problem, UnknownTaskTypeError
from runtime.inputs import InputValueError, coerce_input
from runtime.model._common import (
    FLOW_ID_PATTERN,
    ID_PATTERN,
    MAX_FLOW_ID_LENGTH,
    MAX_NAMESPACE_LENGTH,
    NAMESPACE_PATTERN,
    dec_hook,
)
from runtime.model._flow import Concurrency, Flow, FlowOutput, PluginDefault
from runtime.model._inputs import INPUT_CLASSES, Input
from runtime.model._retry import Retry
from runtime.model._task import ChildKind, Task, attribute_name
from runtime.model._triggers import TRIGGER_CLASSES, Trigger
from runtime.parsing import _types
from runtime.parsing._yaml import Located, Path
from runtime.tasks import registry as default_registry
from runtime.tasks._registry import TaskRegistry
from runtime.tasks.core.flow import DagTask

_FLOW_KEYS = {
    "id",
    "namespace",
    "revision",
    "description",
    "labels",
    "inputs",
    "variables",
    "tasks",
    "errors",
    "finally",
    "afterExecution",
    "outputs",
    "retry",
    "concurrency",
    "triggers",
    "disabled",
    "pluginDefaults",
    "taskDefaults",
}


def format_path(path: Path) -> str:
    """``("tasks", 2, "retry")`` -> ``tasks[2].retry``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


class FlowBuilder:
    """Builds one flow from a loaded document. ``problems`` holds everything wrong."""

    def __init__(self, located: Located, source: str | None, registry: TaskRegistry) -> None:
        self.located = located
        self.source = source
        self.registry = registry
        self.problems: list[Problem] = []
        self.task_ids: dict[str, Path] = {}
        self.defaults: list[PluginDefault] = []

    # -- reporting ----------------------------------------------------------------------

    def report(self, path: Path, message: str, at_key: bool = False) -> None:
        """Record a problem at ``path``."""
        mark = self.located.key_mark(path) if at_key else self.located.mark(path)
        line, column = mark if mark is not None else (None, None)
        self.problems.append(
            Problem(
                message=message, path=format_path(path), file=self.source, line=line, column=column
            )
        )

    # -- the flow -----------------------------------------------------------------------

    def build(self) -> Flow | None:
        """The flow, or None when there are problems."""
        data = self.located.data
        if not isinstance(data, dict):
            self.report((), "a flow must be a mapping with at least id, namespace and tasks")
            return None
        for key in data:
            if key not in _FLOW_KEYS:
                self.report(
                    (key,),
                    f"unknown property {key!r}{_types.suggest(key, sorted(_FLOW_KEYS))}",
                    True,
                )
        flow_id = self._identifier(data, "id", FLOW_ID_PATTERN, MAX_FLOW_ID_LENGTH)
        namespace = self._identifier(data, "namespace", NAMESPACE_PATTERN, MAX_NAMESPACE_LENGTH)
        self.defaults = self._plugin_defaults(data)
        parts: dict[str, Any] = {
            "labels": self._labels(data.get("labels"), ("labels",)),
            "inputs": self._inputs(data.get("inputs"), ("inputs",)),
            "variables": self._mapping(data, "variables"),
            "tasks": self._tasks(data.get("tasks"), ("tasks",), required=True),
            "errors": self._tasks(data.get("errors"), ("errors",)),
            "finally_": self._tasks(data.get("finally"), ("finally",)),
            "after_execution": self._tasks(data.get("afterExecution"), ("afterExecution",)),
            "outputs": self._outputs(data.get("outputs")),
            "retry": self._retry(data.get("retry"), ("retry",)),
            "concurrency": self._concurrency(data.get("concurrency")),
            "triggers": self._triggers(data.get("triggers")),
            "plugin_defaults": self.defaults,
        }
        revision = data.get("revision")
        if revision is not None and (not isinstance(revision, int) or revision < 1):
            self.report(("revision",), f"must be a whole number of at least 1, found {revision!r}")
        for name in ("disabled",):
            if name in data and not isinstance(data[name], bool):
                self.report((name,), f"expected true or false, found {data[name]!r}")
        description = data.get("description")
        if description is not None and not isinstance(description, str):
            self.report(("description",), "expected text")
        if self.problems or flow_id is None or namespace is None:
            return None
        return Flow(
            id=flow_id,
            namespace=namespace,
            revision=revision,
            description=description,
            disabled=bool(data.get("disabled", False)),
            **parts,
        )

    def _identifier(
        self, data: dict[str, Any], key: str, pattern: re.Pattern[str], limit: int
    ) -> str | None:
        value = data.get(key)
        if value is None:
            self.report((), f"missing required property {key!r}")
            return None
        if not isinstance(value, str) or not pattern.match(value):
            self.report((key,), f"invalid {key} {value!r}: must match {pattern.pattern}")
            return None
        if len(value) > limit:
            self.report((key,), f"{key} is longer than {limit} characters")
            return None
        return value

    def _mapping(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report((key,), f"expected a mapping, found {type(value).__name__}")
            return {}
        return value

    def _labels(self, value: Any, path: Path) -> dict[str, str]:
        if value is None:
            return {}
        labels: dict[str, str] = {}
        if isinstance(value, dict):
            for key, item in value.items():
                labels[key] = _label_text(item)
            return labels
        if isinstance(value, list):
            for index, entry in enumerate(value):
                if not isinstance(entry, dict) or set(entry) != {"key", "value"}:
                    self.report((*path, index), "each label must be a mapping with key and value")
                    continue
                labels[str(entry["key"])] = _label_text(entry["value"])
            return labels
        self.report(path, "labels must be a mapping or a list of {key, value}")
        return labels

    def _plugin_defaults(self, data: dict[str, Any]) -> list[PluginDefault]:
        key = "pluginDefaults" if "pluginDefaults" in data else "taskDefaults"
        value = data.get(key)
        if value is None:
            return []
        built = self._convert_list(value, (key,), list[PluginDefault])
        return built or []

    def _convert_list(self, value: Any, path: Path, cls: Any) -> Any:
        if not isinstance(value, list):
            self.report(path, f"expected a list, found {type(value).__name__}")
            return None
        prepared = _types.prepare(value, _types.type_info(cls), path, self.report)
        return _types.convert(prepared, cls, path, self.report, dec_hook)

    # -- inputs and outputs -------------------------------------------------------------

    def _inputs(self, value: Any, path: Path) -> list[Input]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(path, f"expected a list of inputs, found {type(value).__name__}")
            return []
        built: list[Input] = []
        seen: set[str] = set()
        for index, raw in enumerate(value):
            item_path = (*path, index)
            spec = self._input(raw, item_path)
            if spec is None:
                continue
            if spec.id in seen:
                self.report((*item_path, "id"), f"duplicate input id {spec.id!r}")
            seen.add(spec.id)
            built.append(spec)
        return built

    def _input(self, raw: Any, path: Path) -> Input | None:
        if not isinstance(raw, dict):
            self.report(path, "an input must be a mapping with id and type")
            return None
        raw = dict(raw)
        if "id" not in raw and "name" in raw:
            raw["id"] = raw.pop("name")  # Kestra's deprecated spelling
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in INPUT_CLASSES:
            names = list(INPUT_CLASSES)
            found = "missing" if kind is None else repr(kind)
            self.report(
                (*path, "type"),
                f"input type is {found}; expected one of {', '.join(names)}"
                f"{_types.suggest(str(kind), names) if kind else ''}",
            )
            return None
        spec: Input | None = self._convert(raw, INPUT_CLASSES[kind], path)
        if spec is None:
            return None
        if not ID_PATTERN.match(spec.id):
            self.report(
                (*path, "id"), f"invalid input id {spec.id!r}: must match {ID_PATTERN.pattern}"
            )
        validator = getattr(spec, "validator", None)
        if validator is not None:
            try:
                re.compile(validator)
            except re.error as exc:
                self.report((*path, "validator"), f"invalid regular expression: {exc}")
                return spec
        if spec.defaults is not None:
            try:
                coerce_input(spec, spec.defaults)
            except InputValueError as exc:
                self.report((*path, "defaults"), f"defaults do not fit the input: {exc}")
        return spec

    def _outputs(self, value: Any) -> list[FlowOutput]:
        if value is None:
            return []
        built = self._convert_list(value, ("outputs",), list[FlowOutput])
        if built is None:
            return []
        seen: set[str] = set()
        for index, output in enumerate(built):
            if not ID_PATTERN.match(output.id):
                self.report(("outputs", index, "id"), f"invalid output id {output.id!r}")
            if output.id in seen:
                self.report(("outputs", index, "id"), f"duplicate output id {output.id!r}")
            seen.add(output.id)
        return list(built)

    # -- retry, concurrency, triggers ---------------------------------------------------

    def _retry(self, value: Any, path: Path) -> Retry | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.report(path, "retry must be a mapping with a type")
            return None
        result: Retry | None = self._convert(value, Retry, path)
        return result

    def _concurrency(self, value: Any) -> Concurrency | None:
        if value is None:
            return None
        result: Concurrency | None = self._convert(value, Concurrency, ("concurrency",))
        if result is not None and result.limit < 1:
            self.report(("concurrency", "limit"), f"must be at least 1, found {result.limit}")
        return result

    def _triggers(self, value: Any) -> list[Trigger]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(("triggers",), "expected a list of triggers")
            return []
        built: list[Trigger] = []
        for index, raw in enumerate(value):
            path: Path = ("triggers", index)
            kind = raw.get("type") if isinstance(raw, dict) else None
            cls = TRIGGER_CLASSES.get(kind) if isinstance(kind, str) else None
            if cls is None:
                names = sorted({c.kestra_types[0] for c in TRIGGER_CLASSES.values()})
                self.report(
                    (*path, "type"),
                    f"unknown trigger type {kind!r}; expected one of {', '.join(names)}"
                    f"{_types.suggest(str(kind), names)}",
                )
                continue
            trigger = self._convert(raw, cls, path)
            if trigger is None:
                continue
            for field, message in trigger.problems():
                self.report((*path, field), message)
            if any(other.id == trigger.id for other in built):
                # each trigger keeps its own durable state, named by its id
                self.report((*path, "id"), f"duplicate trigger id {trigger.id!r}")
            built.append(trigger)
        return built

    def _convert(self, raw: dict[str, Any], cls: Any, path: Path) -> Any:
        prepared = _types.prepare(raw, _types.type_info(cls), path, self.report)
        return _types.convert(prepared, cls, path, self.report, dec_hook)

    # -- tasks --------------------------------------------------------------------------

    def _tasks(self, value: Any, path: Path, *, required: bool = False) -> list[Task]:
        if value is None:
            if required:
                self.report(path[:-1], f"missing required property {path[-1]!r}")
            return []
        if not isinstance(value, list):
            self.report(path, f"expected a list of tasks, found {type(value).__name__}")
            return []
        if required and not value:
            self.report(path, "must list at least one task")
        built: list[Task] = []
        for index, raw in enumerate(value):
            task = self._task(raw, (*path, index))
            if task is not None and not task.disabled:
                built.append(task)
        return built

    def _task(self, raw: Any, path: Path) -> Task | None:
        if not isinstance(raw, dict):
            self.report(path, "a task must be a mapping with id and type")
            return None
        task_id = raw.get("id")
        if not isinstance(task_id, str) or not ID_PATTERN.match(task_id):
            found = "missing" if task_id is None else repr(task_id)
            self.report((*path, "id"), f"task id is {found}: must match {ID_PATTERN.pattern}")
            task_id = None
        else:
            self._remember_id(task_id, path)
        type_name = raw.get("type")
        if not isinstance(type_name, str):
            self.report((*path, "type"), "missing required property 'type' (the task type)")
            return None
        try:
            cls = self.registry.lookup(type_name)
        except UnknownTaskTypeError as exc:
            self.report((*path, "type"), str(exc))
            return None
        data = self._with_defaults(raw, type_name)
        before = len(self.problems)
        children = self._children(cls, data, path)
        children_failed = len(self.problems) > before
        task: Task | None = self._convert(data, cls, path)
        if task is None or task_id is None:
            return None
        for name, value in children.items():
            setattr(task, attribute_name(name), value)
        if not children_failed:  # a list emptied by broken children is not "empty"
            for field, message in task.problems():
                self.report((*path, *_split(field)), message)
        return task

    def _remember_id(self, task_id: str, path: Path) -> None:
        first = self.task_ids.get(task_id)
        if first is None:
            self.task_ids[task_id] = path
            return
        mark = self.located.mark(first)
        where = f" (first at {format_path(first)}" + (f", line {mark[0]})" if mark else ")")
        self.report((*path, "id"), f"duplicate task id {task_id!r}{where}")

    def _with_defaults(self, raw: dict[str, Any], type_name: str) -> dict[str, Any]:
        if not self.defaults:
            return dict(raw)
        data = dict(raw)
        for default in self.defaults:
            if not type_name.startswith(default.type):
                continue
            for key, value in default.values.items():
                if default.forced or key not in data:
                    data[key] = value
        return data

    def _children(self, cls: type[Task], data: dict[str, Any], path: Path) -> dict[str, Any]:
        built: dict[str, Any] = {}
        for name, kind in cls.child_fields.items():
            if name not in data:
                continue
            value = data.pop(name)
            child_path = (*path, name)
            if kind is ChildKind.LIST:
                built[name] = self._tasks(value, child_path)
            elif kind is ChildKind.MAP_OF_LISTS:
                built[name] = self._task_map(value, child_path)
            else:
                built[name] = self._dag(value, child_path)
        return built

    def _task_map(self, value: Any, path: Path) -> dict[str, list[Task]]:
        if not isinstance(value, dict):
            self.report(path, "expected a mapping from a value to a list of tasks")
            return {}
        return {str(key): self._tasks(tasks, (*path, key)) for key, tasks in value.items()}

    def _dag(self, value: Any, path: Path) -> list[DagTask]:
        if not isinstance(value, list):
            self.report(path, "expected a list of {task, dependsOn}")
            return []
        built: list[DagTask] = []
        for index, entry in enumerate(value):
            entry_path = (*path, index)
            if not isinstance(entry, dict) or "task" not in entry:
                self.report(
                    entry_path, "each Dag entry must be a mapping with task (and dependsOn)"
                )
                continue
            for key in entry:
                if key not in ("task", "dependsOn"):
                    self.report((*entry_path, key), f"unknown property {key!r}", True)
            depends = entry.get("dependsOn")
            if depends is not None and (
                not isinstance(depends, list) or not all(isinstance(d, str) for d in depends)
            ):
                self.report((*entry_path, "dependsOn"), "expected a list of task ids")
                depends = None
            task = self._task(entry["task"], (*entry_path, "task"))
            if task is not None:
                built.append(DagTask(task=task, depends_on=depends))
        return built


def _split(field: str) -> Path:
    """``"tasks[1].dependsOn"`` -> ``("tasks", 1, "dependsOn")``."""
    parts: list[str | int] = []
    for piece in field.split("."):
        name, *indexes = piece.replace("]", "").split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes)
    return tuple(parts)


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def build_flow(
    located: Located, source: str | None = None, registry: TaskRegistry | None = None
) -> tuple[Flow | None, list[Problem]]:
    """Validate loaded YAML as a flow: the flow (or None) and every problem found."""
    builder = FlowBuilder(located, source, registry or default_registry)
    flow = builder.build()
    return flow, builder.problems
