"""Runs one Kestra conformance scenario (``expected/*.json``) against a Runtime.

The format is described in the corpus README: start the flow, apply the actions in order
(each waits for its trigger, checks ``expect``, does ``do``, checks ``expect_after``), wait
for the end, and compare the execution with ``expect``, field by field.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from runtime.engine import (
    Execution,
    ExecutionHandle,
    LogEmitted,
    Runtime,
    State,
    TaskRun,
    execution_json,
    fold,
)
from runtime.engine._runtime import ExecutionError
from runtime.flows import FlowRepository

WAIT_SECONDS = 60.0


class MismatchError(AssertionError):
    """An expectation that does not hold (with the path of the field)."""


def load_repository(folder: Path) -> FlowRepository:
    repository = FlowRepository()
    problems = repository.load_dir(folder)
    if problems:
        raise AssertionError("conformance flows do not parse:\n" + "\n".join(map(str, problems)))
    return repository


class Scenario:
    """One expected file, run."""

    def __init__(self, path: Path, runtime: Runtime) -> None:
        self.spec: dict[str, Any] = json.loads(path.read_text())
        self.name = path.stem
        self.runtime = runtime
        self.first: ExecutionHandle | None = None
        self.others: dict[str, ExecutionHandle] = {}
        self.unique = uuid.uuid4().hex[:8]
        self.pending_idle_checked = False

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        spec = self.spec
        if "sequence" in spec:
            for step in spec["sequence"]:
                handle = await self.start()
                execution = await self.wait_end(handle)
                self.check(step.get("expect", {}), execution, "sequence")
            return
        handle = await self.start()
        self.first = handle
        current = handle
        for index, action in enumerate(spec.get("actions", [])):
            current = await self.act(current, action, f"actions[{index}]")
        execution = await self.wait_end(current)
        with anyio.fail_after(WAIT_SECONDS):
            await self.runtime.wait_idle()
        self.pending_idle_checked = True
        self.check(spec.get("expect", {}), execution, "expect")

    async def start(self) -> ExecutionHandle:
        spec = self.spec
        flow = self.runtime.flows.get("io.kestra.tests", spec["flow"])
        assert flow is not None, f"flow {spec['flow']} not found"
        inputs = self.substitute(spec.get("inputs", {}))
        handle = await self.runtime.start(
            flow,
            inputs,
            labels=spec.get("labels"),
            validate_inputs=spec.get("inputs_validated", False),
        )
        if self.first is None:
            self.first = handle
        return handle

    async def act(
        self, handle: ExecutionHandle, action: dict[str, Any], where: str
    ) -> ExecutionHandle:
        await self.wait_trigger(handle, action)
        if "expect" in action:
            self.check(action["expect"], handle.execution, f"{where}.expect")
        do = action["do"]
        result = handle
        if do == "resume":
            await handle.resume(action.get("inputs"))
        elif do == "kill":
            await handle.kill()
        elif do == "restart":
            await self.wait_end(handle)
            snapshot = await handle.restart()
            if "expect_after" in action:
                self.check(action["expect_after"], snapshot, f"{where}.expect_after")
            return handle
        elif do == "replay":
            await self.wait_end(handle)
            task_run = self.task_runs(handle.execution, action["from_task"])[0]
            result = await self.runtime.replay(handle.id, task_run.id)
        elif do == "start_execution":
            other = await self.start()
            self.others[action["as"]] = other
        elif do != "check":
            raise MismatchError(f"{where}: unknown action {do!r}")
        if "expect_after" in action:
            after = result.snapshot if result.snapshot is not None else result.execution
            self.check(action["expect_after"], after, f"{where}.expect_after")
        return result

    async def wait_trigger(self, handle: ExecutionHandle, action: dict[str, Any]) -> None:
        with anyio.fail_after(WAIT_SECONDS):
            async for _ in handle.changes():
                execution = handle.execution
                if "after_state" in action:
                    target = State(action["after_state"])
                    if execution.state.current is target and (
                        target not in (State.RUNNING, State.PAUSED)
                        or any(t.state.current is target for t in execution.task_run_list)
                    ):
                        return
                elif "after_task_running" in action:
                    for task_run in execution.task_run_list:
                        if (
                            task_run.task_id == action["after_task_running"]
                            and task_run.state.current is State.RUNNING
                        ):
                            return
                else:
                    return
        raise MismatchError(f"trigger {action} never happened")

    async def wait_end(self, handle: ExecutionHandle) -> Execution:
        with anyio.fail_after(WAIT_SECONDS):
            return await handle.result()

    # -- checking -----------------------------------------------------------------------

    def substitute(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("${unique}", self.unique)
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        return value

    def placeholder(self, text: str, execution: Execution) -> str:
        if "${" not in text:
            return text
        assert self.first is not None
        text = text.replace("${execution.id}", self.first.id).replace("${unique}", self.unique)
        while "${taskruns." in text:
            start = text.index("${taskruns.")
            end = text.index("}", start)
            task_id = text[start + len("${taskruns.") : end].removesuffix(".id")
            text = text[:start] + self.task_runs(execution, task_id)[0].id + text[end + 1 :]
        while "${subflow_executions." in text:
            start = text.index("${subflow_executions.")
            end = text.index("}", start)
            flow_id = text[start + len("${subflow_executions.") : end].removesuffix(".id")
            text = text[:start] + self.subflow(execution, flow_id).id + text[end + 1 :]
        return text

    def matches(
        self, expected: Any, actual: Any, execution: Execution, partial: bool = False
    ) -> bool:
        if isinstance(expected, dict) and len(expected) == 1:
            ((key, value),) = expected.items()
            if key == "$contains":
                return isinstance(actual, str) and self.placeholder(value, execution) in actual
            if key == "$gte":
                return isinstance(actual, int | float) and bool(actual >= value)
            if key == "$not":
                return not self.matches(value, actual, execution, partial)
            if key == "$any_order":
                return isinstance(actual, list) and Counter(map(_key, actual)) == Counter(
                    _key(self.resolve(v, execution)) for v in value
                )
        if isinstance(expected, str):
            return bool(_text(actual) == self.placeholder(expected, execution))
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                return False
            if not partial and set(expected) != set(actual):
                return False
            return all(
                k in actual and self.matches(v, actual[k], execution, partial)
                for k, v in expected.items()
            )
        if isinstance(expected, list):
            return (
                isinstance(actual, list)
                and len(expected) == len(actual)
                and all(
                    self.matches(e, a, execution, partial)
                    for e, a in zip(expected, actual, strict=True)
                )
            )
        if isinstance(expected, bool) or expected is None:
            return actual is expected or actual == expected
        if isinstance(expected, int | float) and isinstance(actual, str):
            return actual == str(expected)
        return bool(expected == actual)  # numbers

    def resolve(self, value: Any, execution: Execution) -> Any:
        return self.placeholder(value, execution) if isinstance(value, str) else value

    def expect(self, ok: bool, where: str, expected: Any, actual: Any) -> None:
        if not ok:
            raise MismatchError(f"{self.name}: {where}: expected {expected!r}, got {actual!r}")

    def task_runs(self, execution: Execution, task_id: str) -> list[TaskRun]:
        return [t for t in execution.task_run_list if t.task_id == task_id]

    def subflow(self, execution: Execution, flow_id: str) -> Execution:
        """An execution of ``flow_id`` started by ``execution`` or by one of its subflows."""
        everything = {e.id: e for e in self.runtime.executions()}

        def starter(child: Execution) -> str | None:
            variables = (child.trigger or {}).get("variables") or {}
            return variables.get("executionId") if isinstance(variables, dict) else None

        for candidate in everything.values():
            if candidate.flow_id != flow_id:
                continue
            ancestor = starter(candidate)
            while ancestor is not None:
                if ancestor == execution.id:
                    return candidate
                parent = everything.get(ancestor)
                ancestor = starter(parent) if parent is not None else None
        raise MismatchError(f"{self.name}: no subflow execution of {flow_id} from {execution.id}")

    def check(self, expect: dict[str, Any], execution: Execution, where: str) -> None:
        for key, expected in expect.items():
            at = f"{where}.{key}"
            if key == "notes":
                continue
            if key == "state":
                self.expect(
                    self.matches(expected, execution.state.current.value, execution),
                    at,
                    expected,
                    execution.state.current.value,
                )
            elif key == "id":
                self.expect(
                    self.matches(expected, execution.id, execution), at, expected, execution.id
                )
            elif key == "parent_id":
                self.expect(
                    self.matches(expected, execution.parent_id, execution),
                    at,
                    expected,
                    execution.parent_id,
                )
            elif key == "taskrun_count":
                count = len(execution.task_run_list)
                self.expect(self.matches(expected, count, execution), at, expected, count)
            elif key == "state_history_length":
                length = len(execution.state.histories)
                self.expect(length == expected, at, expected, length)
            elif key == "state_history_contains":
                history = [h.state.value for h in execution.state.histories]
                self.expect(all(s in history for s in expected), at, expected, history)
            elif key == "state_history_prefix":
                history = [h.state.value for h in execution.state.histories]
                self.expect(history[: len(expected)] == expected, at, expected, history)
            elif key == "taskruns":
                for task_id, fields in expected.items():
                    self.check_task_runs(
                        fields, self.task_runs(execution, task_id), execution, f"{at}.{task_id}"
                    )
            elif key == "taskruns_by_value":
                for entry in expected:
                    runs = [
                        t
                        for t in self.task_runs(execution, entry["task"])
                        if self.value_path(execution, t) == entry["value_path"]
                    ]
                    fields = {k: v for k, v in entry.items() if k not in ("task", "value_path")}
                    self.check_task_runs(fields, runs, execution, f"{at}[{entry['task']}]")
            elif key == "taskrun_order":
                for position, task_id in expected.items():
                    actual = execution.task_run_list[int(position)].task_id
                    self.expect(actual == task_id, f"{at}[{position}]", task_id, actual)
            elif key == "last_taskrun":
                last = execution.task_run_list[-1]
                self.check_task_runs(
                    {k: v for k, v in expected.items() if k != "task"},
                    [last],
                    execution,
                    at,
                )
                if isinstance(expected, dict) and "task" in expected:
                    self.expect(
                        last.task_id == expected["task"], at, expected["task"], last.task_id
                    )
            elif key == "outputs":
                self.expect(
                    self.matches(expected, execution.outputs, execution),
                    at,
                    expected,
                    execution.outputs,
                )
            elif key in ("labels", "labels_include"):
                labels = {label.key: label.value for label in execution.labels}
                self.expect(
                    self.matches(expected, labels, execution, partial=key == "labels_include"),
                    at, expected, labels,
                )  # fmt: skip
            elif key == "logs":
                self.check_logs(expected, execution, at)
            elif key == "subflow_executions":
                for flow_id, fields in expected.items():
                    child = self.subflow(execution, flow_id)
                    extra = {k: v for k, v in fields.items() if k != "trigger"}
                    self.check(extra, child, f"{at}.{flow_id}")
                    if "trigger" in fields:
                        self.expect(
                            self.matches(fields["trigger"], child.trigger, execution, partial=True),
                            f"{at}.{flow_id}.trigger", fields["trigger"], child.trigger,
                        )  # fmt: skip
            elif key == "other_executions":
                for name, fields in expected.items():
                    other = self.others[name]
                    self.check(fields, other.execution, f"{at}.{name}")
            elif key == "flow_execution_states":
                assert self.pending_idle_checked, "wait_idle must run before this check"
                states = [
                    e.state.current.value
                    for e in self.runtime.executions()
                    if e.flow_id == self.spec["flow"] and e.state.current.terminal
                ]
                self.expect(self.matches(expected, states, execution), at, expected, states)
            else:
                raise MismatchError(f"{self.name}: {at}: unknown expectation")

    def value_path(self, execution: Execution, task_run: TaskRun) -> list[str]:
        by_id = {t.id: t for t in execution.task_run_list}
        values: list[str] = []
        current: TaskRun | None = task_run
        while current is not None:
            if current.value is not None:
                values.append(current.value)
            current = by_id.get(current.parent_task_run_id or "")
        return list(reversed(values))

    def check_task_runs(
        self, fields: dict[str, Any], runs: list[TaskRun], execution: Execution, where: str
    ) -> None:
        if "count" in fields:
            self.expect(len(runs) == fields["count"], f"{where}.count", fields["count"], len(runs))
        if not runs and any(k != "count" for k in fields):
            raise MismatchError(f"{self.name}: {where}: no task run")
        for run in runs:
            for key, expected in fields.items():
                at = f"{where}.{key}"
                if key == "count":
                    continue
                if key == "state":
                    actual: Any = run.state.current.value
                elif key == "attempts":
                    actual = None if run.attempts is None else len(run.attempts)
                elif key == "attempt_states":
                    actual = [a.state.current.value for a in run.attempts or ()]
                elif key == "history_counts":
                    counts = Counter(h.state.value for h in run.state.histories)
                    actual = {state: counts.get(state, 0) for state in expected}
                elif key == "outputs":
                    actual = run.outputs
                    self.expect(
                        self.matches(expected, actual, execution, partial=True),
                        at,
                        expected,
                        actual,
                    )
                    continue
                else:
                    raise MismatchError(f"{self.name}: {at}: unknown task run expectation")
                self.expect(self.matches(expected, actual, execution), at, expected, actual)

    def check_logs(self, expected: list[dict[str, Any]], execution: Execution, where: str) -> None:
        logs = [e for e in self.runtime.events_of(execution.id) if isinstance(e, LogEmitted)]
        for entry in expected:
            found = any(
                (entry.get("task") is None or log.task_id == entry["task"])
                and (entry.get("level") is None or log.level == entry["level"])
                and self.matches(entry["message"], log.message, execution)
                for log in logs
            )
            shown = [(log.task_id, log.level, log.message) for log in logs]
            self.expect(found, where, entry, shown)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


async def run_scenario(path: Path, repository: FlowRepository, runtime_factory: Any) -> None:
    """Run the scenario, then check that every execution is the fold of its events."""
    async with runtime_factory(repository) as runtime:
        try:
            await Scenario(path, runtime).run()
        except ExecutionError as exc:
            raise MismatchError(f"{path.stem}: {exc}") from exc
        with anyio.fail_after(WAIT_SECONDS):
            await runtime.wait_idle()
        for execution in runtime.executions():
            rebuilt = execution_json(fold(runtime.events_of(execution.id)))
            if rebuilt != execution_json(execution):
                raise MismatchError(
                    f"{path.stem}: execution {execution.id} differs from its events"
                )
