"""The ``tiercel`` command."""

from __future__ import annotations

import sys

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
