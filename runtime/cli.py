"""The ``tiercel`` command."""

from __future__ import annotations

import click

from runtime._version import __version__
from runtime.logging import configure_logging


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
