"""Deleting executions and purging old ones, with their files; uploaded FILE inputs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from actors import VirtualClock
from runtime.engine import ExecutionError, Runtime, State
from runtime.errors import InputValidationError
from runtime.storage import storage_for

WITH_FILE = """
id: files
namespace: tests
inputs:
  - {id: data, type: FILE}
tasks:
  - {id: read, type: Return, format: "{{ read(inputs.data) | trim }}"}
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["out.txt"]
    commands: ["echo produced > out.txt"]
"""


async def test_file_inputs_are_uploaded_and_deleted_with_their_execution(tmp_path: Path) -> None:
    upload = tmp_path / "upload.csv"
    upload.write_text("a,b\n1,2\n")
    data = tmp_path / "data"
    async with Runtime(data_dir=data) as runtime:
        execution = await runtime.run(WITH_FILE, {"data": upload})
        assert execution.state.current is State.SUCCESS
        uri = execution.inputs["data"]
        assert uri.startswith("kestra:///tests/files/executions/")
        assert execution.task_run_list[0].outputs == {"value": "a,b\n1,2"}
        storage = storage_for(data)
        produced = storage.resolve(execution.task_run_list[1].outputs["outputFiles"]["out.txt"])  # type: ignore[index]
        assert produced.exists()
        assert await runtime.delete_execution(execution.id)
        assert not storage.resolve(uri).exists()
        assert not produced.exists()
        assert await runtime.store.get_execution(execution.id) is None
        assert not await runtime.delete_execution(execution.id)


async def test_a_missing_file_input_is_an_input_error(tmp_path: Path) -> None:
    async with Runtime(data_dir=tmp_path) as runtime:
        with pytest.raises(InputValidationError, match="no file at"):
            await runtime.start(WITH_FILE, {"data": str(tmp_path / "nope.csv")})


async def test_a_running_execution_cannot_be_deleted(tmp_path: Path) -> None:
    async with Runtime(data_dir=tmp_path, clock=VirtualClock(autojump=False)) as runtime:
        handle = await runtime.start(
            "id: s\nnamespace: t\ntasks: [{id: s, type: Sleep, duration: PT1H}]\n"
        )
        with pytest.raises(ExecutionError, match="still running"):
            await runtime.delete_execution(handle.id)
        await handle.kill()


async def test_purge_deletes_only_finished_executions_older_than_the_limit(tmp_path: Path) -> None:
    clock = VirtualClock()
    flow = "id: p\nnamespace: t\ntasks: [{id: s, type: Sleep, duration: PT1H}]\n"
    async with Runtime(data_dir=tmp_path, clock=clock) as runtime:
        old = await runtime.run(flow)
        recent = await runtime.run(flow)
        assert await runtime.purge(timedelta(minutes=30)) == 1  # old ended an hour before recent
        assert await runtime.store.get_execution(old.id) is None
        assert await runtime.store.get_execution(recent.id) is not None


async def test_the_file_size_limit_is_configurable(tmp_path: Path) -> None:
    flow = """
id: big
namespace: tests
tasks:
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["big.bin"]
    commands: ["head -c 2048 /dev/zero > big.bin"]
"""
    async with Runtime(data_dir=tmp_path, max_file_bytes=1024) as runtime:
        handle = await runtime.start(flow)
        execution = await handle.result()
        messages = [getattr(e, "message", "") for e in runtime.events_of(handle.id)]
    assert execution.state.current is State.FAILED
    assert any("1024-byte limit" in m for m in messages)
