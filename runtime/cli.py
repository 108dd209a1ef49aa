"""The ``tiercel`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from runtime._version import __version__
from runtime.errors import FlowValidationError
from runtime.gc_tuning import tune_for_engine
from runtime.logging import configure_logging
from runtime.parsing import load_flow


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="tiercel")
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Minimum level of the logs written to standard error.",
)
@click.option(
    "--log-format",
    default="console",
    show_default=True,
    type=click.Choice(["console", "json"]),
    help="How logs are written.",
)
def main(log_level: str, log_format: str) -> None:
    """Tiercel runs declarative YAML workflows with Kestra's execution semantics."""
    configure_logging(log_level, "json" if log_format == "json" else "console")
    tune_for_engine()


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check flow files: "ok" for each valid one, every problem of the others.

    Exit status 0 only if every file is valid, 2 otherwise.
    """
    failed = False
    for name in files:
        try:
            flow = load_flow(name)
        except FlowValidationError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            continue
        click.echo(
            f"{name}: ok ({flow.namespace}.{flow.id}, {sum(1 for _ in flow.all_tasks())} tasks)"
        )
    sys.exit(2 if failed else 0)


def _parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"input {pair!r} is not key=value")
        inputs[key] = value
    return inputs


@main.command()
@click.argument("flow_file", type=click.Path(dir_okay=False))
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input.")
@click.option("--json", "as_json", is_flag=True, help="Print the final execution as JSON.")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A folder of flows that Subflow tasks may start (the flow file's folder is read too).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("TIERCEL_DATA", ".tiercel"),
    show_default="$TIERCEL_DATA or .tiercel",
    help="Where the SQLite store, internal storage and working files go.",
)
def run(
    flow_file: str,
    inputs: tuple[str, ...],
    as_json: bool,
    flows_dir: Path | None,
    data_dir: Path,
) -> None:
    """Run one execution of FLOW_FILE in this process and wait for its end.

    Exit status: 0 for SUCCESS or WARNING, 1 for FAILED, KILLED or CANCELLED, 2 for an
    invalid flow or input. Ctrl-C kills the execution cleanly.
    """
    from runtime.runner import run_flow_file

    try:
        flow = load_flow(flow_file)
    except FlowValidationError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    sys.exit(
        run_flow_file(
            flow, Path(flow_file), _parse_inputs(inputs), as_json, flows_dir, Path(data_dir)
        )
    )


@main.command()
@click.argument("flow_file", type=click.Path(dir_okay=False))
@click.option("-n", "--executions", default=100, show_default=True, type=click.IntRange(1))
@click.option("-c", "--concurrency", default=10, show_default=True, type=click.IntRange(1))
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input.")
@click.option(
    "--store",
    type=click.Choice(["sqlite", "memory"]),
    default="sqlite",
    show_default=True,
    help="The store the executions run on (a temporary one).",
)
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A folder of flows that Subflow tasks may start.",
)
@click.option(
    "--server",
    "server_url",
    help="Run against a tiercel server at this URL instead of in this process "
    "(the flow file is created or updated there).",
)
@click.option("--token", envvar="TIERCEL_API_TOKEN", help="The server's API token.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bench(
    flow_file: str,
    executions: int,
    concurrency: int,
    inputs: tuple[str, ...],
    store: str,
    flows_dir: Path | None,
    server_url: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Run FLOW_FILE many times and report throughput, latency and where time goes.

    Reports executions/s, task runs/s, latency percentiles (creation to end), time per
    task id, final states and peak RSS. Ctrl-C stops cleanly and reports what finished.
    """
    import anyio
    import msgspec
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from runtime.bench import RemoteBenchError, bench_remote, report_lines
    from runtime.bench import bench as run_bench
    from runtime.errors import InputValidationError
    from runtime.flows import FlowRepository
    from runtime.inputs import resolve_inputs

    try:
        flow = load_flow(flow_file)
    except FlowValidationError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(2)
    repository = FlowRepository()
    for folder in (Path(flow_file).resolve().parent, flows_dir):
        if folder is not None:
            repository.search(folder)
    repository.add(flow)
    try:
        values = resolve_inputs(flow.inputs, _parse_inputs(inputs), strict=True)
    except InputValidationError as exc:
        for problem in exc.problems:
            click.echo(f"{flow_file}: {problem.message}", err=True)
        sys.exit(2)
    console = Console(stderr=True)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task(f"{flow.uid}", total=executions)

    def announce() -> None:
        where = f" on {server_url}" if server_url else ""
        console.print(
            f"bench: {executions} executions of {flow.uid}{where}, {concurrency} at a time "
            "(Ctrl-C stops and reports)",
            markup=False,
        )

    def advance(done: int) -> None:
        progress.update(task, completed=done)

    with progress:
        if server_url:
            import httpx

            from runtime.client import default_token

            try:
                report = anyio.run(
                    lambda: bench_remote(
                        server_url,
                        token or default_token(),
                        flow,
                        values,
                        executions,
                        concurrency,
                        advance,
                        announce,
                    )
                )
            except (RemoteBenchError, OSError, httpx.HTTPError) as exc:
                click.echo(f"bench: {exc}", err=True)
                sys.exit(1)
        else:
            report = anyio.run(
                lambda: run_bench(
                    flow, values, executions, concurrency, store, repository, advance, announce
                )
            )
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    else:
        for line in report_lines(report):
            click.echo(line)
    sys.exit(0)


def _add_remote_commands() -> None:
    from runtime.cli_remote import executions, server

    main.add_command(server)
    main.add_command(executions)


_add_remote_commands()

if __name__ == "__main__":
    main()
