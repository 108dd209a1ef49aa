"""``tiercel server`` and the ``tiercel executions ...`` family that talks to one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec

F = TypeVar("F", bound=Callable[..., Any])


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="A YAML file.")
@click.option("--flows", type=click.Path(file_okay=False), help="A folder of flow files.")
@click.option("--data", type=click.Path(file_okay=False), help="[default: .tiercel]")
@click.option("--host", help="[default: 127.0.0.1]")
@click.option("--port", type=int, help="[default: 8080; 0 picks a free port]")
@click.option("--store", help="Store URL: sqlite:///path or memory [default: SQLite in data].")
@click.option("--no-auth", is_flag=True, default=None, help="Serve without authentication.")
@click.option("--cors-origin", "cors_origins", multiple=True, help="Allow a browser origin.")
@click.option("--shutdown-timeout", type=float, help="Seconds running attempts get to finish.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="all (default), api, executor, worker, scheduler; repeatable or comma-separated "
    "(roles other than all need a PostgreSQL store).",
)
@click.option("--worker-concurrency", type=int, help="Attempts a worker runs at once [8].")
@click.pass_context
def server(
    ctx: click.Context, /, config_file: str | None, no_auth: bool | None, **flags: Any
) -> None:
    """Run the daemon: HTTP API, schedules and triggers, with a SQLite store.

    Settings come from flags, else environment variables (TIERCEL_*), else the YAML file
    (--config or TIERCEL_CONFIG), else defaults; the README lists them all. The API token
    is TIERCEL_API_TOKEN; without one, a token is generated into DATA/api-token.
    SIGTERM or Ctrl-C stops gracefully; a second one stops at once.
    """
    import anyio

    from runtime.gc_tuning import freeze_startup
    from runtime.logging import configure_logging
    from runtime.server import ConfigError, ServerStartError, load_config, serve
    from runtime.server.config import describe

    parent = ctx.parent
    if parent is not None and parent.get_parameter_source("log_level") is not None:
        source = parent.get_parameter_source("log_level")
        if source is click.core.ParameterSource.DEFAULT:
            configure_logging("info", parent.params.get("log_format", "console"), force=True)
    if no_auth:
        flags["auth"] = False
    if flags.get("roles"):
        flags["roles"] = tuple(
            r.strip() for raw in flags["roles"] for r in raw.split(",") if r.strip()
        )
    for key in ("flows", "data"):
        if flags.get(key) is not None:
            flags[key] = Path(flags[key])
    try:
        config = load_config(config_file, flags)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"configuration: {describe(problem)}", err=True)
        sys.exit(2)

    def ready(where: str) -> None:
        freeze_startup()  # what start-up made is never garbage: out of the collector's way
        if where.startswith("http"):
            click.echo(f"Tiercel listening on {where}", err=True)
            click.echo(f"Web UI: {where}/ui", err=True)
        else:
            click.echo(f"Tiercel running: {where}", err=True)

    try:
        anyio.run(lambda: serve(config, on_ready=ready))
    except ServerStartError as exc:
        click.echo(f"tiercel server: {exc}", err=True)
        sys.exit(1)


def _client_options(func: F) -> F:
    func = click.option(
        "--server", "server_url", envvar="TIERCEL_SERVER", help="[default: http://127.0.0.1:8080]"
    )(func)
    func = click.option(
        "--token", envvar="TIERCEL_API_TOKEN", help="API token [default: $TIERCEL_API_TOKEN]"
    )(func)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def _client(server_url: str | None, token: str | None) -> Any:
    from runtime.client import TiercelClient

    return TiercelClient(server_url, token)


def _fail(exc: Exception) -> None:
    from runtime.client import ApiClientError

    if isinstance(exc, ApiClientError):
        where = f"error {exc.status}: " if exc.status else ""
        click.echo(f"{where}{exc.message}", err=True)
        for item in exc.errors:
            line = f" (line {item['line']})" if item.get("line") else ""
            click.echo(f"  {item.get('path', '')}{line}: {item.get('message', '')}", err=True)
        sys.exit(1)
    raise exc


def _emit(data: Any) -> None:
    click.echo(msgspec.json.encode(data).decode())


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")


def _describe(execution: dict[str, Any]) -> list[str]:
    state = execution["state"]
    duration = state.get("duration")
    lines = [
        f"{execution['id']}  {execution['namespace']}.{execution['flowId']} "
        f"rev {execution.get('flowRevision')}",
        f"  state    {state['current']}"
        + (f" after {duration:.3f}s" if isinstance(duration, float) else ""),
        f"  started  {_when(state.get('startDate'))}",
    ]
    if execution.get("labels"):
        labels = ", ".join(f"{x['key']}={x['value']}" for x in execution["labels"])
        lines.append(f"  labels   {labels}")
    for task_run in execution.get("taskRunList", []):
        value = f" [{task_run['value']}]" if task_run.get("value") is not None else ""
        attempts = len(task_run.get("attempts") or [])
        lines.append(
            f"  - {task_run['taskId']}{value}: {task_run['state']['current']}"
            f" ({attempts} attempt{'s' if attempts != 1 else ''})"
        )
    if execution.get("outputs"):
        lines.append(f"  outputs  {msgspec.json.encode(execution['outputs']).decode()}")
    return lines


@click.group()
def executions() -> None:
    """List, inspect and control executions on a running server."""


@executions.command("list")
@click.option("-n", "--namespace", help="A namespace (and its sub-namespaces).")
@click.option("-f", "--flow", "flow_id", help="A flow id.")
@click.option("-s", "--state", "states", multiple=True, help="A state (repeatable).")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--size", default=25, show_default=True, type=click.IntRange(1, 1000))
@_client_options
def list_executions(
    namespace: str | None,
    flow_id: str | None,
    states: tuple[str, ...],
    page: int,
    size: int,
    server_url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Executions, newest first."""
    try:
        with _client(server_url, token) as client:
            found = client.search(
                namespace=namespace, flow_id=flow_id, states=list(states), page=page, size=size
            )
    except Exception as exc:
        _fail(exc)
        return
    if as_json:
        _emit(found)
        return
    for execution in found["results"]:
        state = execution["state"]
        click.echo(
            f"{execution['id']}  {state['current']:<10} {_when(state.get('startDate'))}  "
            f"{execution['namespace']}.{execution['flowId']}"
        )
    click.echo(f"{len(found['results'])} of {found['total']}", err=True)


def _single(action: str, doc: str) -> click.Command:
    @click.argument("execution_id")
    @_client_options
    def command(
        execution_id: str, server_url: str | None, token: str | None, as_json: bool
    ) -> None:
        try:
            with _client(server_url, token) as client:
                execution = getattr(client, action)(execution_id)
        except Exception as exc:
            _fail(exc)
            return
        if as_json:
            _emit(execution)
        else:
            for line in _describe(execution):
                click.echo(line)

    command.__doc__ = doc
    return click.command(action if action != "get" else "show")(command)


executions.add_command(_single("get", "Show an execution and its task runs."))
executions.add_command(_single("kill", "Kill an execution (and the subflows it waits for)."))
executions.add_command(_single("pause", "Pause a running execution."))
executions.add_command(_single("restart", "Restart a failed, killed or warning execution."))


@executions.command()
@click.argument("execution_id")
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="onResume input.")
@_client_options
def resume(
    execution_id: str,
    inputs: tuple[str, ...],
    server_url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Resume a paused execution, with the Pause task's onResume inputs."""
    values: dict[str, str] = {}
    for pair in inputs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"input {pair!r} is not key=value")
        values[key] = value
    try:
        with _client(server_url, token) as client:
            execution = client.resume(execution_id, values)
    except Exception as exc:
        _fail(exc)
        return
    if as_json:
        _emit(execution)
    else:
        for line in _describe(execution):
            click.echo(line)


@executions.command()
@click.argument("execution_id")
@_client_options
def follow(execution_id: str, server_url: str | None, token: str | None, as_json: bool) -> None:
    """Print an execution's events as they happen, until it ends."""
    try:
        with _client(server_url, token) as client:
            for _, name, data in client.follow(execution_id):
                if as_json:
                    _emit(data)
                    continue
                click.echo(_event_line(name, data))
    except Exception as exc:
        _fail(exc)


def _event_line(name: str, data: dict[str, Any]) -> str:
    when = _when(data.get("time"))
    task = f" {data['taskRunId'][:8]}" if data.get("taskRunId") else ""
    detail = ""
    if "state" in data:
        detail = f" -> {data['state']}"
    elif name == "LogEmitted":
        detail = f" {data.get('level', '')} {data.get('message', '')}"
    elif name == "TaskRunCreated":
        detail = f" {data.get('taskId', '')}"
    elif name == "AttemptStarted":
        detail = f" attempt {data.get('attempt')}"
    return f"{when} #{data.get('seq')} {name}{task}{detail}"


@executions.command()
@click.argument("execution_id")
@click.option("--level", "min_level", help="Minimum level (TRACE, DEBUG, INFO, WARN, ERROR).")
@click.option("--follow", "-F", "follow_", is_flag=True, help="Keep printing new lines.")
@_client_options
def logs(
    execution_id: str,
    min_level: str | None,
    follow_: bool,
    server_url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Print an execution's log lines."""
    try:
        with _client(server_url, token) as client:
            if follow_:
                path = "/api/v1/logs/{id}/follow" + (f"?minLevel={min_level}" if min_level else "")
                entries: Any = (data for _, _, data in client.follow(execution_id, path))
            else:
                entries = client.logs(execution_id, min_level)
            for entry in entries:
                if as_json:
                    _emit(entry)
                    continue
                task = f" [{entry['taskId']}]" if entry.get("taskId") else ""
                click.echo(
                    f"{_when(entry['timestamp'])} {entry['level']:<5}{task} {entry['message']}"
                )
    except Exception as exc:
        _fail(exc)
