"""WorkingDirectory: inputFiles written before its tasks, outputFiles collected after them
(even failed or killed), the shared directory removed, recovery in between."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from actors import VirtualClock
from runtime.engine import Execution, ExecutionHandle, LogEmitted, Runtime, State, TaskRun, _workdir
from runtime.errors import FlowValidationError
from runtime.parsing import parse_flow
from runtime.storage import storage_for
from runtime.store import SqliteStore

SH = "io.kestra.plugin.scripts.shell.Commands"
WD = "io.kestra.plugin.core.flow.WorkingDirectory"


def runs(execution: Execution, task_id: str) -> list[TaskRun]:
    return [t for t in execution.task_run_list if t.task_id == task_id]


def run_of(execution: Execution, task_id: str) -> TaskRun:
    (task_run,) = runs(execution, task_id)
    return task_run


def outputs_of(execution: Execution, task_id: str) -> dict[str, Any]:
    return run_of(execution, task_id).outputs or {}


def shared_dir(data: Path, execution: Execution, task_id: str = "wd") -> Path:
    return _workdir.directory_of(data, execution.id, run_of(execution, task_id).id)


def messages(runtime: Runtime, execution: Execution) -> list[str]:
    return [e.message for e in runtime.events_of(execution.id) if isinstance(e, LogEmitted)]


FILES = f"""
id: files
namespace: tests
inputs:
  - {{id: data, type: FILE}}
  - {{id: who, type: STRING, defaults: world}}
tasks:
  - id: produce
    type: {SH}
    outputFiles: ["made.txt"]
    commands: ["echo made earlier > made.txt"]
  - id: wd
    type: {WD}
    inputFiles:
      hello.txt: "hello {{{{ inputs.who }}}}"
      nested/upload.csv: "{{{{ inputs.data }}}}"
      earlier.txt: "{{{{ outputs.produce.outputFiles['made.txt'] }}}}"
    outputFiles: ["*.txt", "out/**"]
    tasks:
      - id: write
        type: {SH}
        commands:
          - cat hello.txt nested/upload.csv earlier.txt > a.txt
          - mkdir -p out/deep && echo deep > out/deep/b.txt
      - id: share
        type: {SH}
        commands: ['echo "::{{\\"outputs\\":{{\\"lines\\":$(wc -l < a.txt)}}}}::"']
  - id: after
    type: Return
    format: "{{{{ read(outputs.wd.outputFiles['a.txt']) }}}}|{{{{ read(outputs.wd.outputFiles['out/deep/b.txt']) | trim }}}}"
"""


async def test_input_files_are_written_shared_and_output_files_collected(tmp_path: Path) -> None:
    upload = tmp_path / "upload.csv"
    upload.write_text("x,y\n")
    data = tmp_path / "data"
    async with Runtime(data_dir=data) as runtime:
        execution = await runtime.run(FILES, {"data": upload})
    assert execution.state.current is State.SUCCESS, messages(runtime, execution)
    assert outputs_of(execution, "share")["vars"] == {"lines": 2}
    files = outputs_of(execution, "wd")["outputFiles"]
    assert sorted(files) == ["a.txt", "earlier.txt", "hello.txt", "out/deep/b.txt"]
    assert all(uri.startswith("kestra:///tests/files/executions/") for uri in files.values())
    storage = storage_for(data)
    assert storage.read_text(files["hello.txt"]) == "hello world"
    assert outputs_of(execution, "after") == {"value": "hello worldx,y\nmade earlier\n|deep"}
    assert not shared_dir(data, execution).exists()


async def test_input_files_from_an_expression_and_from_another_working_directory(
    tmp_path: Path,
) -> None:
    flow = f"""
id: chained
namespace: tests
variables:
  files: {{"one.txt": "first", "two.json": {{"k": 1}}}}
tasks:
  - id: first
    type: {WD}
    inputFiles: "{{{{ vars.files }}}}"
    outputFiles: ["*"]
    tasks:
      - {{id: upper, type: {SH}, commands: ["tr a-z A-Z < one.txt > one.txt.up"]}}
  - id: wd
    type: {WD}
    inputFiles:
      again.txt: "{{{{ outputs.first.outputFiles['one.txt.up'] }}}}"
    tasks:
      - id: show
        type: {SH}
        commands: ['echo "::{{\\"outputs\\":{{\\"text\\":\\"$(cat again.txt)\\"}}}}::"']
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(flow)
    assert execution.state.current is State.SUCCESS, messages(runtime, execution)
    first = outputs_of(execution, "first")["outputFiles"]
    assert sorted(first) == ["one.txt", "one.txt.up", "two.json"]
    assert storage_for(tmp_path).read_text(first["two.json"]) == '{"k":1}'
    assert outputs_of(execution, "show")["vars"] == {"text": "FIRST"}
    assert outputs_of(execution, "wd") == {}  # no outputFiles asked for: no outputs
    assert not shared_dir(tmp_path, execution).exists()


FAILING = f"""
id: failing
namespace: tests
tasks:
  - id: wd
    type: {WD}
    outputFiles: ["*.txt"]
    tasks:
      - {{id: write, type: {SH}, commands: ["echo partial > a.txt"]}}
      - {{id: fail, type: {SH}, commands: ["echo more > b.txt", "exit 3"]}}
      - {{id: never, type: {SH}, commands: ["echo never > c.txt"]}}
    errors:
      - id: handle
        type: {SH}
        commands: ['echo "::{{\\"outputs\\":{{\\"dir\\":\\"$PWD\\"}}}}::"']
    finally:
      - id: last
        type: Return
        format: "{{{{ read(outputs.wd.outputFiles['b.txt']) | trim }}}}"
"""


async def test_a_failed_task_still_has_its_files_collected_before_errors_and_finally(
    tmp_path: Path,
) -> None:
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(FAILING)
    assert execution.state.current is State.FAILED
    assert run_of(execution, "wd").state.current is State.FAILED
    assert run_of(execution, "fail").state.current is State.FAILED
    assert runs(execution, "never") == []
    files = outputs_of(execution, "wd")["outputFiles"]
    assert sorted(files) == ["a.txt", "b.txt"]
    # errors and finally run after the collection, outside the removed directory
    assert run_of(execution, "handle").state.current is State.SUCCESS
    assert run_of(execution, "wd").id not in outputs_of(execution, "handle")["vars"]["dir"]
    assert outputs_of(execution, "last") == {"value": "more"}
    assert not shared_dir(tmp_path, execution).exists()


async def test_a_killed_working_directory_collects_its_files_and_is_removed(
    tmp_path: Path,
) -> None:
    flow = f"""
id: killed
namespace: tests
tasks:
  - id: wd
    type: {WD}
    outputFiles: ["*.txt"]
    tasks:
      - {{id: write, type: {SH}, commands: ["echo before > a.txt", "echo written", "sleep 300"]}}
      - {{id: never, type: {SH}, commands: ["echo never > c.txt"]}}
    finally:
      - {{id: last, type: Return, format: "not after a kill"}}
"""
    async with Runtime(data_dir=tmp_path) as runtime:
        handle = await runtime.start(flow)
        with anyio.fail_after(20):
            async for _ in handle.changes():
                task_runs = runs(handle.execution, "write")
                if task_runs and task_runs[0].state.current is State.RUNNING:
                    directory = shared_dir(tmp_path, handle.execution)
                    if (directory / "a.txt").exists():
                        break
        await handle.kill()
        with anyio.fail_after(20):
            execution = await handle.result()
    assert execution.state.current is State.KILLED
    assert run_of(execution, "wd").state.current is State.KILLED
    assert runs(execution, "never") == runs(execution, "last") == []
    files = outputs_of(execution, "wd")["outputFiles"]
    assert storage_for(tmp_path).read_text(files["a.txt"]) == "before\n"
    assert not shared_dir(tmp_path, execution).exists()


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ('inputFiles: {"{{ \'../escaped.txt\' }}": "x"}', "'../escaped.txt'"),
        ('inputFiles: {"/tmp/absolute.txt": "x"}', "'/tmp/absolute.txt'"),
        ('outputFiles: ["../*.txt"]', "'../*.txt'"),
        ("outputFiles: ['link.txt']", "'link.txt'"),
    ],
)
async def test_a_file_name_leaving_the_directory_fails_the_task_run(
    tmp_path: Path, setting: str, named: str
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    flow = f"""
id: escape
namespace: tests
tasks:
  - id: wd
    type: {WD}
    {setting}
    tasks:
      - {{id: link, type: {SH}, commands: ["ln -s {outside} link.txt"]}}
"""
    data = tmp_path / "data"
    async with Runtime(data_dir=data) as runtime:
        execution = await runtime.run(flow)
        logs = messages(runtime, execution)
    assert execution.state.current is State.FAILED
    assert run_of(execution, "wd").state.current is State.FAILED
    errors = [m for m in logs if m.startswith("wd: ") and named in m]
    assert errors, logs
    assert not (data / "work" / execution.id / "escaped.txt").exists()
    assert "outputFiles" not in outputs_of(execution, "wd")
    assert not shared_dir(data, execution).exists()


async def test_input_files_that_are_not_a_map_or_name_no_stored_file_fail(
    tmp_path: Path,
) -> None:
    for setting, expected in [
        ('inputFiles: "{{ [1, 2] }}"', "inputFiles must render to a map"),
        (
            'inputFiles: {a.txt: "kestra:///tests/nope/executions/x/missing.txt"}',
            "input file 'a.txt'",
        ),
    ]:
        flow = f"""
id: bad
namespace: tests
tasks:
  - id: wd
    type: {WD}
    {setting}
    tasks:
      - {{id: never, type: Return, format: x}}
"""
        async with Runtime(data_dir=tmp_path) as runtime:
            execution = await runtime.run(flow)
            logs = messages(runtime, execution)
        assert execution.state.current is State.FAILED
        assert runs(execution, "never") == []
        assert any(expected in m for m in logs), logs
        assert not shared_dir(tmp_path, execution).exists()


def test_namespace_files_and_cache_are_refused_at_parse_time() -> None:
    for field, value in [
        ("namespaceFiles", "{enabled: true}"),
        ("cache", "{patterns: ['node_modules/**'], ttl: PT1H}"),
    ]:
        flow = f"""
id: unsupported
namespace: tests
tasks:
  - id: wd
    type: {WD}
    {field}: {value}
    tasks:
      - {{id: t, type: Return, format: x}}
"""
        with pytest.raises(FlowValidationError) as raised:
            parse_flow(flow)
        assert f"tasks[0].{field}" in str(raised.value)
        assert "not supported" in str(raised.value)
    disabled = f"""
id: disabled
namespace: tests
tasks:
  - id: wd
    type: {WD}
    namespaceFiles: {{enabled: false}}
    tasks:
      - {{id: t, type: Return, format: x}}
"""
    parse_flow(disabled)  # asks for nothing: accepted


async def test_a_restart_reruns_a_failed_working_directory_from_its_first_task(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "fixed"
    flow = f"""
id: restartable
namespace: tests
tasks:
  - id: wd
    type: {WD}
    inputFiles: {{in.txt: "given"}}
    outputFiles: ["*.txt"]
    tasks:
      - {{id: write, type: {SH}, commands: ["cat in.txt > a.txt"]}}
      - {{id: check, type: {SH}, commands: ["cat a.txt", "test -e {marker}"]}}
"""
    data = tmp_path / "data"
    async with Runtime(data_dir=data) as runtime:
        handle = await runtime.start(flow)
        failed = await handle.result()
        assert failed.state.current is State.FAILED
        assert sorted(outputs_of(failed, "wd")["outputFiles"]) == ["a.txt", "in.txt"]
        marker.write_text("")
        await handle.restart()
        with anyio.fail_after(20):
            execution = await handle.result()
    assert execution.state.current is State.SUCCESS, messages(runtime, execution)
    assert len(run_of(execution, "write").attempts or ()) == 1  # a new task run, run again
    assert run_of(execution, "write").id != run_of(failed, "write").id
    files = outputs_of(execution, "wd")["outputFiles"]
    assert storage_for(data).read_text(files["a.txt"]) == "given"
    assert not shared_dir(data, execution).exists()


# -- recovery ------------------------------------------------------------------------------

RECOVERABLE = f"""
id: recoverable
namespace: tests
tasks:
  - id: wd
    type: {WD}
    outputFiles: ["*.txt"]
    tasks:
      - {{id: write, type: {SH}, commands: ["echo kept > a.txt"]}}
  - {{id: after, type: Return, format: "{{{{ read(outputs.wd.outputFiles['a.txt']) | trim }}}}"}}
"""


async def crash_while_collecting(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Run RECOVERABLE until its tasks ended and the collection began, then stop abruptly.

    Returns the execution id and the WorkingDirectory's task run id.
    """
    collecting = anyio.Event()

    async def stuck(*args: object) -> dict[str, str]:
        collecting.set()
        await anyio.sleep_forever()
        raise AssertionError

    monkeypatch.setattr(_workdir, "collect_output_files", stuck)
    ids = ("", "")
    with anyio.CancelScope() as scope:
        async with Runtime(data_dir=path, store=SqliteStore(path / "t.db")) as runtime:
            handle = await runtime.start(RECOVERABLE)
            with anyio.fail_after(20):
                await collecting.wait()
            ids = (handle.id, run_of(handle.execution, "wd").id)
            assert run_of(handle.execution, "write").state.current is State.SUCCESS
            await runtime.store.flush()  # what happened so far is durable...
            scope.cancel()  # ...then the process "dies" with the collection under way
            await anyio.sleep_forever()
    monkeypatch.undo()
    return ids


async def resume(path: Path, execution_id: str) -> tuple[Execution, list[str]]:
    async with Runtime(data_dir=path, store=SqliteStore(path / "t.db")) as runtime:
        handle: ExecutionHandle = runtime.handle(execution_id)
        with anyio.fail_after(20):
            execution = await handle.result()
        return execution, messages(runtime, execution)


async def test_output_files_are_collected_after_a_restart_between_tasks_and_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id, wd_id = await crash_while_collecting(tmp_path, monkeypatch)
    directory = _workdir.directory_of(tmp_path, execution_id, wd_id)
    assert (directory / "a.txt").read_text() == "kept\n"
    execution, _ = await resume(tmp_path, execution_id)
    assert execution.state.current is State.SUCCESS
    assert len(run_of(execution, "write").attempts or ()) == 1  # not run again
    assert sorted(outputs_of(execution, "wd")["outputFiles"]) == ["a.txt"]
    assert outputs_of(execution, "after") == {"value": "kept"}
    assert not directory.exists()


async def test_a_directory_gone_across_a_restart_fails_the_task_run_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id, wd_id = await crash_while_collecting(tmp_path, monkeypatch)
    await _workdir.remove(_workdir.directory_of(tmp_path, execution_id, wd_id))
    execution, logs = await resume(tmp_path, execution_id)
    assert execution.state.current is State.FAILED
    assert run_of(execution, "wd").state.current is State.FAILED
    assert runs(execution, "after") == []
    assert any("no longer exists" in m and m.startswith("wd: outputFiles") for m in logs), logs


async def test_input_files_are_collected_with_a_recursive_pattern(tmp_path: Path) -> None:
    flow = f"""
id: plain
namespace: tests
tasks:
  - id: wd
    type: {WD}
    inputFiles: {{"sub/x.txt": "{{{{ 6 * 7 }}}}", empty.txt: ""}}
    outputFiles: ["**.txt"]
    tasks:
      - {{id: t, type: Return, format: x}}
"""
    async with Runtime(data_dir=tmp_path, clock=VirtualClock()) as runtime:
        execution = await runtime.run(flow)
    assert execution.state.current is State.SUCCESS
    files = outputs_of(execution, "wd")["outputFiles"]
    assert sorted(files) == ["empty.txt", "sub/x.txt"]
    assert storage_for(tmp_path).read_text(files["sub/x.txt"]) == "42"
