"""Structured logging for Tiercel: structlog, configured once per process."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

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


class _ConsoleRenderer:
    """structlog's console renderer, imported on the first line logged (``structlog.dev``
    pulls in rich, which a short ``tiercel run`` that logs nothing should not pay for)."""

    def __init__(self) -> None:
        self._renderer: structlog.typing.Processor | None = None

    def __call__(self, logger: Any, name: str, event_dict: Any) -> Any:
        if self._renderer is None:
            import structlog.dev

            self._renderer = structlog.dev.ConsoleRenderer(colors=False)
        return self._renderer(logger, name, event_dict)


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
        structlog.processors.JSONRenderer() if fmt == "json" else _ConsoleRenderer()
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


class _ToStructlog(logging.Handler):
    """Hands records of stdlib loggers (uvicorn's) to structlog, so one format rules."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = structlog.get_logger(record.name)
        method = getattr(logger, record.levelname.lower(), logger.info)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        method(message, logger=record.name)


def route_stdlib_logging(level: int = logging.INFO) -> None:
    """Send the standard library's log records (third-party libraries) through structlog."""
    root = logging.getLogger()
    if not any(isinstance(h, _ToStructlog) for h in root.handlers):
        root.addHandler(_ToStructlog())
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
