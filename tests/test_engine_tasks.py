"""Core tasks with side effects: scripts, files, metrics, state, KV, labels, subflows."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import pytest

from actors import RealClock, VirtualClock
from runtime.engine import Runtime, State
from runtime.flows import FlowRepository
from runtime.parsing import parse_flow
from runtime.storage import LocalStorage, StorageError
from runtime.testing import run_flow


async def test_shell_commands_outputs_metrics_files_and_logs(tmp_path: Path) -> None:
    flow = r"""
id: shell
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["*.txt"]
    commands:
      - echo 'hello from the shell'
      - printf 'file content\n' > result.txt
      - echo '::{"outputs":{"answer":42},"metrics":[{"name":"rows","type":"counter","value":3,"tags":{"t":"a"}},{"name":"rows","type":"counter","value":2,"tags":{"t":"a"}}]}::'
  - id: read
    type: Return
    format: "{{ read(outputs.sh.outputFiles['result.txt']) | trim }}/{{ outputs.sh.vars.answer }}"
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        handle = await runtime.start(flow)
        execution = await handle.result()
        logs = [e for e in runtime.events_of(handle.id) if type(e).__name__ == "LogEmitted"]
    assert execution.state.current is State.SUCCESS
    sh, read = execution.task_run_list
    assert sh.outputs is not None
    assert sh.outputs["exitCode"] == 0
    assert sh.outputs["vars"] == {"answer": 42}
    uri = sh.outputs["outputFiles"]["result.txt"]
    assert uri.startswith("kestra:///tests/shell/executions/")
    assert read.outputs == {"value": "file content/42"}
    metrics = sh.attempts[0].metrics if sh.attempts else []
    assert [(m.name, m.type, m.value, m.tags) for m in metrics] == [
        ("rows", "counter", 5.0, {"t": "a"})
    ]
    assert any(getattr(log, "message", "") == "hello from the shell" for log in logs)


async def test_a_failing_command_fails_with_its_exit_code(tmp_path: Path) -> None:
    flow = """
id: failing
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands: ["echo before", "exit 3", "echo never"]
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        handle = await runtime.start(flow)
        execution = await handle.result()
        messages = [getattr(e, "message", "") for e in runtime.events_of(handle.id)]
    assert execution.state.current is State.FAILED
    assert "Command failed with exit code 3" in messages
    assert "never" not in messages


async def test_stderr_output_gives_a_warning_unless_disabled(tmp_path: Path) -> None:
    flow = """
id: noisy
namespace: tests
tasks:
  - {id: warns, type: io.kestra.plugin.scripts.shell.Commands, commands: ["echo oops >&2"]}
  - id: quiet
    type: io.kestra.plugin.scripts.shell.Commands
    warningOnStdErr: false
    commands: ["echo oops >&2"]
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(flow)
    states = [t.state.current for t in execution.task_run_list]
    assert states == [State.WARNING, State.SUCCESS]
    assert execution.state.current is State.WARNING


async def test_python_script_runs_with_env_and_input_files(tmp_path: Path) -> None:
    flow = """
id: py
namespace: tests
tasks:
  - id: script
    type: io.kestra.plugin.scripts.python.Script
    env: {GREETING: "{{ 'hi' | upper }}"}
    inputFiles:
      data.txt: "from a file"
    script: |
      import json, os
      text = open("data.txt").read()
      print("::" + json.dumps({"outputs": {"greeting": os.environ["GREETING"], "text": text}}) + "::")
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(flow)
    [script] = execution.task_run_list
    assert execution.state.current is State.SUCCESS
    assert script.outputs is not None
    assert script.outputs["vars"] == {"greeting": "HI", "text": "from a file"}


async def test_kill_stops_a_running_process_with_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    flow = f"""
id: long
namespace: tests
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo $$ > {marker}
      - echo started
      - sleep 300
"""
    async with Runtime(data_dir=tmp_path, clock=RealClock()) as runtime:
        handle = await runtime.start(flow)
        with anyio.fail_after(10):
            async for _ in handle.changes():  # the first log line means the shell runs
                if marker.exists() and marker.read_text().strip():
                    break
        pid = int(marker.read_text())
        await handle.kill()
        with anyio.fail_after(10):
            execution = await handle.result()
    assert execution.state.current is State.KILLED
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    _ = signal.SIGTERM


async def test_working_directory_shares_files_between_tasks(tmp_path: Path) -> None:
    flow = """
id: wd
namespace: tests
tasks:
  - id: dir
    type: WorkingDirectory
    tasks:
      - {id: write, type: io.kestra.plugin.scripts.shell.Commands, commands: ["echo shared > f.txt"]}
      - id: check
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ['echo "::{\\"outputs\\":{\\"content\\":\\"$(cat f.txt)\\"}}::"']
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(flow)
    check = next(t for t in execution.task_run_list if t.task_id == "check")
    assert execution.state.current is State.SUCCESS
    assert check.outputs is not None
    assert check.outputs["vars"] == {"content": "shared"}


async def test_state_tasks_keep_documents_across_executions() -> None:
    flow = """
id: counter
namespace: tests
tasks:
  - {id: get, type: io.kestra.plugin.core.state.Get, name: hits}
  - id: set
    type: io.kestra.plugin.core.state.Set
    name: hits
    data:
      count: "{{ (outputs.get.data.count ?? 0) + 1 }}"
"""
    async with Runtime(clock=VirtualClock()) as runtime:
        first = await runtime.run(flow)
        second = await runtime.run(flow)
    assert first.task_run_list[0].outputs == {"count": 0, "data": {}}
    assert second.task_run_list[0].outputs == {"count": 1, "data": {"count": "1"}}


async def test_kv_tasks_with_ttl_and_error_on_missing() -> None:
    flow = """
id: kv
namespace: tests
tasks:
  - {id: put, type: io.kestra.plugin.core.kv.Set, key: k, value: "{{ 6 * 7 }}", ttl: PT1M}
  - {id: get, type: io.kestra.plugin.core.kv.Get, key: k}
  - {id: wait, type: Sleep, duration: PT2M}
  - {id: expired, type: io.kestra.plugin.core.kv.Get, key: k}
  - {id: delete, type: io.kestra.plugin.core.kv.Delete, key: k}
  - {id: strict, type: io.kestra.plugin.core.kv.Get, key: k, errorOnMissing: true}
"""
    captured = await run_flow(flow)
    assert captured.outputs("get") == {"value": "42"}
    assert captured.outputs("expired") == {"value": None}
    assert captured.outputs("delete") == {"deleted": False}
    assert captured.task_runs("strict")[0].state.current is State.FAILED


async def test_labels_task_adds_and_overrides_labels() -> None:
    captured = await run_flow(
        """
id: labels
namespace: tests
labels: {env: dev}
tasks:
  - {id: set, type: io.kestra.plugin.core.execution.Labels, labels: {env: prod, team: "{{ 'data' }}"}}
  - {id: show, type: Return, format: "{{ labels.env }}/{{ labels.team }}"}
"""
    )
    labels = {label.key: label.value for label in captured.execution.labels}
    assert labels["env"] == "prod"
    assert labels["team"] == "data"
    assert captured.outputs("show") == {"value": "prod/data"}


async def test_subflow_passes_inputs_and_returns_outputs() -> None:
    repository = FlowRepository()
    repository.add(
        parse_flow(
            """
id: child
namespace: tests
inputs: [{id: n, type: INT}]
tasks:
  - {id: double, type: Return, format: "{{ inputs.n * 2 }}"}
outputs:
  - {id: result, type: INT, value: "{{ outputs.double.value }}"}
"""
        )
    )
    parent = """
id: parent
namespace: tests
tasks:
  - {id: call, type: Subflow, namespace: tests, flowId: child, inputs: {n: 21}}
  - {id: use, type: Return, format: "{{ outputs.call.outputs.result }}"}
"""
    async with Runtime(clock=VirtualClock(), flows=repository) as runtime:
        execution = await runtime.run(parent)
        children = [e for e in runtime.executions() if e.flow_id == "child"]
    assert execution.state.current is State.SUCCESS
    call = execution.task_run_list[0]
    assert call.outputs is not None
    assert call.outputs["state"] == "SUCCESS"
    assert call.outputs["executionId"] == children[0].id
    assert execution.task_run_list[1].outputs == {"value": "42"}
    assert children[0].trigger is not None
    assert children[0].trigger["variables"]["executionId"] == execution.id


async def test_killing_a_parent_kills_the_subflow_it_waits_for() -> None:
    repository = FlowRepository()
    repository.add(
        parse_flow("id: slow\nnamespace: tests\ntasks: [{id: s, type: Sleep, duration: PT1H}]\n")
    )
    parent = "id: p\nnamespace: tests\ntasks: [{id: call, type: Subflow, namespace: tests, flowId: slow}]\n"
    async with Runtime(clock=VirtualClock(autojump=False), flows=repository) as runtime:
        handle = await runtime.start(parent)
        with anyio.fail_after(5):
            async for _ in handle.changes():
                if (handle.execution.task_run_list[0].outputs or {}).get("executionId"):
                    break
        await handle.kill()
        execution = await handle.result()
        await runtime.wait_idle()
        child = next(e for e in runtime.executions() if e.flow_id == "slow")
    assert execution.state.current is State.KILLED
    assert child.state.current is State.KILLED


@pytest.mark.parametrize(
    "uri",
    [
        "kestra:///../outside",
        "kestra:///a/%2e%2e/%2e%2e/outside",
        "kestra:///a/b\x00c",
        "file:///etc/passwd",
        "kestra://host/a",
        "kestra:///",
    ],
)
def test_storage_uris_never_leave_the_root(tmp_path: Path, uri: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(StorageError):
        storage.resolve(uri)


def test_an_absolute_looking_uri_stays_inside_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    resolved = storage.resolve("kestra:////etc/passwd")
    assert resolved == (tmp_path / "root" / "etc" / "passwd").resolve()


async def test_absolute_file_names_are_reduced_to_their_base_name(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    source = tmp_path / "data"
    source.write_text("x")
    uri = await storage.put_task_file("ns", "f", "e", "t", "/etc/passwd", source)
    assert storage.resolve(uri) == (tmp_path / "root/ns/f/executions/e/tasks/t/passwd").resolve()


def test_storage_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "ns").mkdir(parents=True)
    (root / "ns" / "escape").symlink_to(tmp_path)
    storage = LocalStorage(root)
    with pytest.raises(StorageError):
        storage.resolve("kestra:///ns/escape/secret")


async def test_storage_size_limit(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root", max_file_bytes=10)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(StorageError, match="10-byte limit"):
        await storage.put_task_file("ns", "f", "e", "t", "big", big)
    small = tmp_path / "small"
    small.write_bytes(b"x" * 10)
    uri = await storage.put_task_file("ns", "f", "e", "t", "small", small)
    assert storage.resolve(uri).read_bytes() == b"x" * 10


async def test_resume_task_resumes_another_paused_execution() -> None:
    waiting = "id: waiting\nnamespace: tests\ntasks:\n  - {id: gate, type: Pause}\n  - {id: after, type: Return, format: done}\n"
    async with Runtime(clock=VirtualClock()) as runtime:
        paused = await runtime.start(waiting)
        await paused.wait_for_state(State.PAUSED)
        resumer = f"id: resumer\nnamespace: tests\ntasks:\n  - {{id: go, type: io.kestra.plugin.core.execution.Resume, executionId: {paused.id}}}\n"
        done = await runtime.run(resumer)
        resumed = await paused.result()
    assert done.state.current is State.SUCCESS
    assert resumed.state.current is State.SUCCESS
    assert resumed.task_run_list[-1].outputs == {"value": "done"}
