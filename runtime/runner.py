"""``tiercel run``: one execution in this process, with live progress on standard error."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
from anyio.abc import TaskStatus
from rich.console import Console
from rich.markup import escape

from runtime.engine import (
    Execution,
    ExecutionHandle,
    LogEmitted,
    Runtime,
    State,
    TaskRunCreated,
    TaskRunStateChanged,
    execution_json,
)
from runtime.errors import InputValidationError
from runtime.flows import FlowRepository
from runtime.model import Flow

_SYMBOLS = {
    State.SUCCESS: "[green]✔[/]",
    State.WARNING: "[yellow]![/]",
    State.FAILED: "[red]✘[/]",
    State.KILLED: "[red]☠[/]",
    State.SKIPPED: "[dim]-[/]",
}


def exit_status(state: State) -> int:
    """0 for SUCCESS and WARNING, 1 for everything else that ends an execution."""
    return 0 if state in (State.SUCCESS, State.WARNING) else 1


def run_flow_file(
    flow: Flow,
    flow_file: Path,
    inputs: dict[str, str],
    as_json: bool,
    flows_dir: Path | None,
    data_dir: Path,
) -> int:
    """Run ``flow`` to its end (stored in ``data_dir``); return the process exit status."""
    repository = FlowRepository()
    for folder in (flow_file.resolve().parent, flows_dir):
        if folder is not None:
            repository.search(folder)
    repository.add(flow)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return anyio.run(_run, flow, repository, inputs, as_json, data_dir, console)
    except InputValidationError as exc:
        for problem in exc.problems:
            console.print(f"{flow_file}: {problem.message}", markup=False)
        return 2


async def _run(
    flow: Flow,
    repository: FlowRepository,
    inputs: dict[str, str],
    as_json: bool,
    data_dir: Path,
    console: Console,
) -> int:
    await anyio.Path(data_dir).mkdir(parents=True, exist_ok=True)
    async with Runtime(flows=repository, data_dir=data_dir, recover=False) as runtime:
        unfinished = await runtime.store.unfinished()
        if unfinished:
            console.print(
                f"note: {len(unfinished)} unfinished execution(s) in {data_dir} from an earlier "
                "process; `tiercel server --data` resumes them",
                markup=False,
            )
        handle = await runtime.start(flow, inputs, strict_inputs=True)
        async with anyio.create_task_group() as tg:
            await tg.start(_kill_on_signal, handle)
            console.print(f"execution {handle.id} of {flow.uid} started", markup=False)
            execution = await _follow(handle, console)
            tg.cancel_scope.cancel()
    if as_json:
        sys.stdout.write(execution_json(execution).decode() + "\n")
        sys.stdout.flush()
    for key, value in (execution.outputs or {}).items():
        console.print(f"output {key} = {value!r}", markup=False)
    duration = execution.state.duration or 0.0
    console.print(
        f"execution {execution.id} {execution.state.current.value} in {duration:.2f}s",
        markup=False,
    )
    return exit_status(execution.state.current)


async def _follow(handle: ExecutionHandle, console: Console) -> Execution:
    task_ids: dict[str, tuple[str, str | None]] = {}
    async for event in handle.events():
        if isinstance(event, TaskRunCreated) and event.task_run_id is not None:
            task_ids[event.task_run_id] = (event.task_id, event.value)
        elif isinstance(event, TaskRunStateChanged) and event.state in _SYMBOLS:
            task_id, value = task_ids.get(event.task_run_id or "", ("?", None))
            label = f"{task_id} [{value}]" if value is not None else task_id
            console.print(f"{_SYMBOLS[event.state]} {escape(label)} {event.state.value}")
        elif isinstance(event, LogEmitted) and event.level in ("WARN", "ERROR"):
            where = escape(event.task_id or "")
            console.print(f"  [dim]{where}[/] {event.level}: {escape(event.message)}")
    return await handle.result()


async def _kill_on_signal(
    handle: ExecutionHandle, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Ctrl-C (or SIGTERM) kills the execution; the run then ends as KILLED."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            try:
                await handle.kill()
            except Exception:  # already ended: nothing to kill
                return
