"""The embedding API: handles, events, Python task types, the testing helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import VirtualClock
from runtime.engine import (
    AttemptStarted,
    ExecutionCreated,
    ExecutionEnded,
    ExecutionNotFoundError,
    Runtime,
    State,
)
from runtime.plugins import RunContext, Task, TaskFailedError, task, task_type
from runtime.testing import run_flow


@task("tests.Multiply")
async def multiply(ctx: RunContext, number: int, times: int = 2) -> dict[str, Any]:
    """Multiplies a number."""
    ctx.metric("multiplications", "counter", 1, {"by": str(times)})
    return {"product": number * times}


@task("tests.Shout")
async def shout(ctx: RunContext, text: str) -> str:
    if not text:
        raise TaskFailedError("nothing to shout")
    return text.upper()


@task_type("tests.Countdown")
class Countdown(Task, kw_only=True):
    """A class-based task type."""

    start: int = 3

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        for n in range(self.start, 0, -1):
            ctx.log("INFO", str(n))
        return {"done": True}


async def test_python_task_types_from_a_function_and_a_class() -> None:
    captured = await run_flow(
        """
id: plugins
namespace: tests
tasks:
  - {id: m, type: tests.Multiply, number: 21}
  - {id: s, type: tests.Shout, text: "{{ outputs.m.product }} apples"}
  - {id: c, type: tests.Countdown, start: 2}
  - {id: empty, type: tests.Shout, text: "", allowFailure: true}
"""
    )
    assert captured.outputs("m") == {"product": 42}
    assert captured.outputs("s") == {"value": "42 APPLES"}
    assert captured.outputs("c") == {"done": True}
    assert [log.message for log in captured.logs if log.task_id == "c"] == ["2", "1"]
    assert captured.task_runs("empty")[0].state.current is State.WARNING
    [attempt] = captured.task_runs("m")[0].attempts or []
    assert [(m.name, m.value, m.tags) for m in attempt.metrics] == [
        ("multiplications", 1.0, {"by": "2"})
    ]
    assert multiply.__doc__ == "Multiplies a number."


async def test_plugin_properties_are_validated_like_core_ones() -> None:
    from runtime.errors import FlowValidationError
    from runtime.parsing import parse_flow

    with pytest.raises(FlowValidationError, match="numbr"):
        parse_flow("id: p\nnamespace: t\ntasks: [{id: m, type: tests.Multiply, numbr: 1}]\n")


def test_a_task_function_must_be_async() -> None:
    with pytest.raises(TypeError, match="must be an async function"):
        task("tests.Sync")(lambda ctx: None)  # type: ignore[arg-type,return-value]


async def test_handle_events_replays_everything_then_follows_live() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        handle = await runtime.start(
            "id: e\nnamespace: t\ntasks:\n  - {id: s, type: Sleep, duration: PT5S}\n"
        )
        events = [event async for event in handle.events()]
        again = [event async for event in handle.events()]
    assert isinstance(events[0], ExecutionCreated)
    assert isinstance(events[-1], ExecutionEnded)
    assert any(isinstance(e, AttemptStarted) for e in events)
    assert [e.seq for e in again] == [e.seq for e in events]


async def test_unknown_executions_are_a_typed_error() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        with pytest.raises(ExecutionNotFoundError):
            runtime.handle("nope")


async def test_follow_resumes_after_a_sequence_number_and_ends_with_the_execution() -> None:
    async with Runtime(clock=VirtualClock()) as runtime:
        handle = await runtime.start(
            "id: e\nnamespace: t\ntasks:\n  - {id: s, type: Sleep, duration: PT5S}\n"
        )
        live = [event.seq async for event in runtime.follow(handle.id)]
        tail = [event.seq async for event in runtime.follow(handle.id, after_seq=3)]
        with pytest.raises(ExecutionNotFoundError):
            [event async for event in runtime.follow("nope")]
    assert live == list(range(1, len(live) + 1))
    assert tail == live[3:]


async def test_ended_executions_beyond_the_retained_count_are_read_back_from_the_store(
    tmp_path: Path,
) -> None:
    flow = "id: e\nnamespace: t\ntasks:\n  - {id: s, type: Return, format: x}\n"
    async with Runtime(data_dir=tmp_path, retain_ended=2) as runtime:
        ids = [(await runtime.start(flow)).id for _ in range(5)]
        handles = [runtime.handle(i) for i in ids[-2:]]
        for handle in handles:
            await handle.result()
        await runtime.wait_idle()
        assert [e.id for e in runtime.executions()] == ids[-2:]
        with pytest.raises(ExecutionNotFoundError):
            runtime.handle(ids[0])
        old = await runtime.lookup(ids[0])
        assert (await old.result()).state.current is State.SUCCESS
        assert (await runtime.get_execution(ids[1])) is not None
        events = [event async for event in runtime.follow(ids[1])]
        assert isinstance(events[-1], ExecutionEnded)
        with pytest.raises(ExecutionNotFoundError):
            await runtime.lookup("nope")


async def test_entry_points_register_task_types(monkeypatch: pytest.MonkeyPatch) -> None:
    import runtime.plugins as plugins

    class FakeEntryPoint:
        name = "tests.FromEntryPoint"

        def load(self) -> type[Task]:
            class FromEntryPoint(Task, kw_only=True):
                async def run(self, ctx: RunContext) -> dict[str, Any] | None:
                    return {"from": "entry point"}

            return FromEntryPoint

    class BrokenEntryPoint:
        name = "tests.Broken"

        def load(self) -> Any:
            raise ImportError("missing dependency")

    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [FakeEntryPoint(), BrokenEntryPoint()]
    )
    plugins.load_entry_points.cache_clear()
    try:
        assert plugins.load_entry_points() == ["tests.FromEntryPoint"]
        captured = await run_flow(
            "id: ep\nnamespace: t\ntasks: [{id: x, type: tests.FromEntryPoint}]\n"
        )
    finally:
        plugins.load_entry_points.cache_clear()
    assert captured.outputs("x") == {"from": "entry point"}
