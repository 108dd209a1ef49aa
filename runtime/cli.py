"""The ``tiercel`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from runtime._version import __version__
from runtime.errors import FlowValidationError
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


if __name__ == "__main__":
    main()
