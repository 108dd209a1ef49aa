"""Structured logging for Tiercel: structlog, configured once per process."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["console", "json"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

_configured = False


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "console",
    stream: TextIO | None = None,
    *,
    force: bool = False,
) -> None:
    """Configure structlog for the whole process; later calls are ignored unless ``force``.

    Logs go to ``stream`` (standard error by default, so ``--json`` output on standard
    output stays clean). Loggers below ``level`` cost one method call: structlog's
    filtering bound logger turns them into no-ops.

    :raises ValueError: if ``level`` is not a known level name.
    """
    global _configured
    if _configured and not force:
        return
    try:
        numeric = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}"
        ) from None
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True
