"""Small actors and helpers shared by the kernel tests."""

from __future__ import annotations

from typing import Any

import anyio

from actors import Actor, ActorSystem, KernelEvent, control_message


@control_message
class Urgent:
    """A user-defined control message."""

    __slots__ = ("tag",)

    def __init__(self, tag: object) -> None:
        self.tag = tag


class Recorder(Actor[Any]):
    """Records every message it handles, in order, into a shared list."""

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    async def receive(self, message: Any) -> Any:
        self.seen.append(message.tag if isinstance(message, Urgent) else message)
        return message


class Gate(Actor[Any]):
    """Handles a message by waiting for the shared gate to open, then records it."""

    def __init__(self, gate: anyio.Event, seen: list[Any]) -> None:
        self.gate = gate
        self.seen = seen

    async def receive(self, message: Any) -> Any:
        self.seen.append(("start", message))
        await self.gate.wait()
        self.seen.append(("done", message))
        return message


def collect(system: ActorSystem) -> list[KernelEvent]:
    """Subscribe to the system's kernel events; return the list they are appended to."""
    events: list[KernelEvent] = []
    system.subscribe(events.append)
    return events
