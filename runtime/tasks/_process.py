"""Running a script task's process: logs from its output, outputs and metrics from
``::{...}::`` lines, and a clean kill (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.text import TextReceiveStream

from runtime.tasks._api import RunContext

KILL_GRACE_SECONDS = 5.0
MAX_LINE_CHARS = 1_000_000


class ProcessResult:
    """What a finished process left: exit code, ``vars`` outputs, whether it wrote to stderr."""

    def __init__(self) -> None:
        self.exit_code: int | None = None
        self.vars: dict[str, Any] = {}
        self.stderr_lines = 0


def _parse_marker(line: str) -> dict[str, Any] | None:
    stripped = line.strip()
    if not (stripped.startswith("::{") and stripped.endswith("}::")):
        return None
    try:
        value = json.loads(stripped[2:-2])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _take_marker(ctx: RunContext, result: ProcessResult, marker: Mapping[str, Any]) -> None:
    outputs = marker.get("outputs")
    if isinstance(outputs, dict):
        result.vars.update(outputs)
    metrics = marker.get("metrics")
    if isinstance(metrics, list):
        for metric in metrics:
            if not isinstance(metric, dict) or "name" not in metric:
                continue
            kind = str(metric.get("type", "counter"))
            tags = {str(k): str(v) for k, v in (metric.get("tags") or {}).items()}
            try:
                ctx.metric(str(metric["name"]), kind, float(metric.get("value", 0)), tags)
            except (TypeError, ValueError) as exc:
                ctx.log("WARN", f"ignored metric {metric!r}: {exc}")


async def _pump(
    ctx: RunContext,
    stream: anyio.abc.ByteReceiveStream,
    level: str,
    result: ProcessResult,
    is_stderr: bool,
) -> None:
    buffer = ""
    async for chunk in TextReceiveStream(stream, errors="replace"):
        buffer += chunk
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            _line(ctx, line, level, result, is_stderr)
        if len(buffer) > MAX_LINE_CHARS:
            _line(ctx, buffer, level, result, is_stderr)
            buffer = ""
    if buffer:
        _line(ctx, buffer, level, result, is_stderr)


def _line(ctx: RunContext, line: str, level: str, result: ProcessResult, is_stderr: bool) -> None:
    line = line.rstrip("\r")
    marker = _parse_marker(line)
    if marker is not None:
        _take_marker(ctx, result, marker)
        return
    if is_stderr:
        result.stderr_lines += 1
    ctx.log(level, line)


async def run_process(
    ctx: RunContext, argv: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> ProcessResult:
    """Run ``argv`` to its end, streaming its output into the attempt's logs.

    Cancelled (a kill), the process group gets SIGTERM, then SIGKILL after a grace period.
    """
    result = ProcessResult()
    # Shielded: the process starts running before open_process returns, and a kill landing
    # in between would leave it orphaned. The kill is then delivered inside the try below.
    with anyio.CancelScope(shield=True):
        process = await anyio.open_process(
            list(argv), cwd=cwd, env={**os.environ, **env}, start_new_session=True
        )
    try:
        await anyio.lowlevel.checkpoint_if_cancelled()
        async with anyio.create_task_group() as tg:
            assert process.stdout is not None
            assert process.stderr is not None
            tg.start_soon(_pump, ctx, process.stdout, "INFO", result, False)
            tg.start_soon(_pump, ctx, process.stderr, "WARN", result, True)
            result.exit_code = await process.wait()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _terminate(process)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await process.aclose()
    return result


async def _terminate(process: anyio.abc.Process) -> None:
    if process.returncode is not None:
        return

    _signal_group(process.pid, signal.SIGTERM)
    with anyio.move_on_after(KILL_GRACE_SECONDS):
        await process.wait()
        return
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
