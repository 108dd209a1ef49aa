"""What the routes share: the runtime, the configuration, and the daemon's lifecycle."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request

from runtime.engine import Runtime
from runtime.server._prometheus import ServerMetrics
from runtime.server.config import ServerConfig


class ServerState:
    """The daemon as the routes see it."""

    def __init__(self, runtime: Runtime, config: ServerConfig) -> None:
        self.runtime = runtime
        self.config = config
        self.closing = anyio.Event()
        """Set when a graceful stop begins: streams end, no new work is accepted."""
        self.metrics = ServerMetrics(runtime)
        self._flow_listeners: list[Callable[[], None]] = []

    def on_flows_changed(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a flow is added, changed or deleted."""
        self._flow_listeners.append(listener)

    def flows_changed(self) -> None:
        """Tell every listener (the scheduler) that flows changed."""
        for listener in self._flow_listeners:
            listener()


def state_of(request: Request) -> ServerState:
    """The daemon's state, from a request."""
    state: ServerState = request.app.state.tiercel
    return state
