"""Server-sent events: a response that ends when its source ends, the client goes away, or
the server stops; comments keep idle connections open through proxies."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from starlette.types import Receive, Scope, Send

HEARTBEAT_SECONDS = 15.0


class SseMessage:
    """One message: ``id``, ``event`` name and ``data`` (one JSON document)."""

    __slots__ = ("data", "event", "id")

    def __init__(self, data: bytes, event: str | None = None, id: str | None = None) -> None:
        self.data = data
        self.event = event
        self.id = id

    def encode(self) -> bytes:
        """The message as it goes on the wire."""
        parts: list[bytes] = []
        if self.id is not None:
            parts.append(b"id: " + self.id.encode() + b"\n")
        if self.event is not None:
            parts.append(b"event: " + self.event.encode() + b"\n")
        parts.extend(b"data: " + line + b"\n" for line in self.data.split(b"\n"))
        parts.append(b"\n")
        return b"".join(parts)


class SseResponse:
    """An ASGI response streaming ``messages`` as ``text/event-stream``.

    The source runs in its own task feeding a small buffer, so a heartbeat can be sent while
    it waits, and a client that goes away (or a server that stops) cancels it cleanly.
    """

    def __init__(
        self,
        messages: AsyncIterator[SseMessage],
        closing: anyio.Event,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.messages = messages
        self.closing = closing
        self.heartbeat = heartbeat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        sender, buffer = anyio.create_memory_object_stream[bytes](16)
        async with anyio.create_task_group() as group:

            async def pump() -> None:
                async with sender:
                    async for message in self.messages:
                        await sender.send(message.encode())

            async def watch_client() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def watch_server() -> None:
                await self.closing.wait()
                group.cancel_scope.cancel()

            group.start_soon(pump)
            group.start_soon(watch_client)
            group.start_soon(watch_server)
            await send(
                {"type": "http.response.body", "body": b": connected\n\n", "more_body": True}
            )
            async with buffer:
                while True:
                    with anyio.move_on_after(self.heartbeat) as idle:
                        try:
                            chunk = await buffer.receive()
                        except anyio.EndOfStream:
                            break
                    if idle.cancelled_caught:
                        chunk = b": keep-alive\n\n"
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            group.cancel_scope.cancel()
        with contextlib.suppress(OSError):  # the client may be gone
            await send({"type": "http.response.body", "body": b"", "more_body": False})
