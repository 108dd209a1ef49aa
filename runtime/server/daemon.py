"""``tiercel server``: the runtime, the HTTP API and the scheduler in one process.

A graceful stop (SIGTERM, SIGINT, or :meth:`Daemon.stop`): the API stops accepting work
(503) and closes its streams, schedules stop, running attempts get ``shutdown_timeout``
seconds to finish (their results are kept), everything is flushed, and the process exits.
What did not finish is resumed by the next start. A second signal stops at once.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import anyio
import anyio.abc
import structlog
import uvicorn

from runtime.engine import Runtime
from runtime.errors import TiercelError
from runtime.logging import route_stdlib_logging
from runtime.server._cluster_node import ClusterNode, NodeStartError
from runtime.server._flow_sources import FlowFolder, StoredFlows, load_stored_flows
from runtime.server._guard import Credentials, load_or_create_token
from runtime.server._state import ServerState
from runtime.server.app import create_app
from runtime.server.config import ServerConfig
from runtime.store import Store, open_store

log = structlog.get_logger("tiercel.server")


class ServerStartError(TiercelError):
    """The server could not start (the port is taken, the data folder is unusable...)."""


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides how to stop."""

    def capture_signals(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


def credentials_for(config: ServerConfig) -> tuple[Credentials | None, str | None]:
    """The credentials the API accepts, and where a generated token was written."""
    if not config.auth:
        return None, None
    tokens = [config.token] if config.token else []
    written = None
    if not tokens and not config.basic_auth:
        token, path = load_or_create_token(config.data)
        tokens = [token]
        written = str(path)
    return Credentials(tokens, config.basic_auth), written


class Daemon:
    """One running server; :meth:`run` until :meth:`stop` (or a signal)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.url: str | None = None
        self._stop = anyio.Event()
        self._force = anyio.Event()
        self._runtime: Runtime | None = None
        self._server: _Uvicorn | None = None

    def stop(self, *, force: bool = False) -> None:
        """Begin a graceful stop (``force``: stop at once, killing running attempts)."""
        self._stop.set()
        if force:
            self._force.set()
            if self._server is not None:
                self._server.force_exit = True
            if self._runtime is not None:
                self._runtime.abort()

    async def run(
        self,
        *,
        handle_signals: bool = True,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        """Serve until stopped; signals are watched from start to the very end.

        :raises ServerStartError: if the server cannot start.
        """
        failure: ServerStartError | None = None
        async with anyio.create_task_group() as outer:
            if handle_signals:
                outer.start_soon(self._watch_signals)
            try:
                await self._run(on_ready)
            except ServerStartError as exc:
                failure = exc  # raised below, not wrapped in the task group's ExceptionGroup
            finally:
                outer.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _run(self, on_ready: Callable[[str], None] | None) -> None:
        config = self.config
        route_stdlib_logging()
        roles = config.role_set
        try:
            config.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServerStartError(f"cannot create the data folder {config.data}: {exc}") from None
        credentials, token_path = credentials_for(config)
        if "api" in roles:
            if credentials is None:
                log.warning("authentication is OFF: anyone who can reach the port controls Tiercel")
            elif token_path is not None:
                log.info("API token generated", file=token_path)
        async with AsyncExitStack() as stack:
            try:
                node = await stack.enter_async_context(ClusterNode.open(config, roles))
                store = open_store(config.store, config.data)
            except (NodeStartError, ValueError) as exc:
                raise ServerStartError(str(exc)) from None
            stack.push_async_callback(node.released)  # runs once the runtime has stopped
            if roles == {"worker"}:
                await self._run_worker_only(node, store, on_ready)
                return
            runtime = await stack.enter_async_context(
                Runtime(
                    data_dir=config.data,
                    store=store,
                    shutdown_timeout=config.shutdown_timeout,
                    retain_ended=config.retain_ended,
                    recover=node.pool is None,
                    attempt_runner=node.attempt_runner(),
                    placement=node.placement(),
                )
            )
            self._runtime = runtime
            node.attach(runtime)
            state = ServerState(runtime, config)
            stored = await load_stored_flows(runtime)
            folder = None
            if config.flows is not None:
                folder = FlowFolder(
                    runtime, config.flows, state.flows_changed, config.flows_poll_interval
                )
                await folder.sync()
            log.info(
                "flows loaded", stored=stored, total=len(runtime.flows.all()), roles=sorted(roles)
            )
            failed = False
            async with anyio.create_task_group() as group:
                await node.start(group, runtime.store)
                await self._start_triggers(group, runtime, state, node, roles)
                if folder is not None:
                    group.start_soon(folder.watch)
                if node.pool is not None and roles != {"worker"}:  # others change flows
                    shared = StoredFlows(runtime, state.flows_changed, config.flows_poll_interval)
                    group.start_soon(shared.watch)
                if "api" in roles:
                    failed = not await self._serve_http(state, credentials, group, on_ready)
                else:
                    log.info("running", node=node.id, roles=sorted(roles))
                    if on_ready is not None:
                        on_ready(f"node {node.id} ({', '.join(sorted(roles))})")
                    await self._stop.wait()
                await node.stopping(runtime, force=self._force.is_set())
                group.cancel_scope.cancel()
            if failed:
                raise ServerStartError(
                    f"cannot listen on {config.host}:{config.port} (see the log above)"
                )
        if self._force.is_set():
            log.warning("stopped at once; unfinished work resumes at the next start")
        else:
            log.info("stopped")

    async def _serve_http(
        self,
        state: ServerState,
        credentials: Credentials | None,
        group: anyio.abc.TaskGroup,
        on_ready: Callable[[str], None] | None,
    ) -> bool:
        """Serve the API until stopped; False if it could not listen."""
        config = self.config
        app = create_app(state, credentials)
        server = _Uvicorn(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=5,
            )
        )
        self._server = server
        served = anyio.Event()

        async def serve() -> None:
            try:
                await server.serve()
            except SystemExit:
                self._stop.set()
            finally:
                served.set()

        group.start_soon(serve)
        while not server.started and not served.is_set():  # noqa: ASYNC110
            await anyio.sleep(0.01)  # uvicorn has no event for "listening"
        if not server.started:
            return False
        await self._until_stopped(server, state, served, on_ready)
        return True

    async def _run_worker_only(
        self, node: ClusterNode, store: Store, on_ready: Callable[[str], None] | None
    ) -> None:
        async with store, anyio.create_task_group() as group:
            worker = await node.start_worker(group, store)
            log.info("running", node=node.id, roles=["worker"])
            if on_ready is not None:
                on_ready(f"node {node.id} (worker)")
            await self._stop.wait()
            await worker.stop(0.0 if self._force.is_set() else self.config.shutdown_timeout)
            group.cancel_scope.cancel()

    async def _until_stopped(
        self,
        server: _Uvicorn,
        state: ServerState,
        served: anyio.Event,
        on_ready: Callable[[str], None] | None,
    ) -> None:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        log.info("listening", url=self.url)
        if on_ready is not None:
            on_ready(self.url)
        await self._stop.wait()
        log.info(
            "stopping: no new work; running attempts may finish",
            deadline=self.config.shutdown_timeout,
        )
        state.closing.set()
        server.should_exit = True
        await served.wait()

    async def _start_triggers(
        self,
        group: anyio.abc.TaskGroup,
        runtime: Runtime,
        state: ServerState,
        node: ClusterNode,
        roles: set[str],
    ) -> None:
        from runtime.scheduling import FlowTriggers, MissedSchedules, Scheduler

        if "scheduler" in roles:
            scheduler = Scheduler(
                runtime,
                missed=MissedSchedules(self.config.missed_schedules),
                max_catch_up=self.config.max_catch_up,
            )
            state.on_flows_changed(scheduler.flows_changed)
            if node.pool is None:
                await group.start(scheduler.run)
            else:
                group.start_soon(node.lead, "scheduler", scheduler.run)
        if "executor" in roles:
            if node.pool is None:
                await group.start(FlowTriggers(runtime).run)
            else:  # ends happen on every executor: one node follows them in the store
                lag = timedelta(seconds=max(30.0, 3 * self.config.lease_seconds))
                triggers = FlowTriggers(
                    runtime,
                    poll_interval=0.5,
                    lag=lag,
                    refresh_flows=StoredFlows(runtime, state.flows_changed).sync,
                )
                group.start_soon(node.lead, "flow-triggers", triggers.run)

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for received in signals:
                if self._stop.is_set():
                    log.warning("second signal: stopping at once", signal=received.name)
                    self.stop(force=True)
                    continue
                log.info("signal received: stopping gracefully", signal=received.name)
                self.stop()


async def serve(config: ServerConfig, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run a daemon with signal handling until it is told to stop."""
    await Daemon(config).run(on_ready=on_ready)
