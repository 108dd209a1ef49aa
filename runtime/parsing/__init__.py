"""Reading flows: YAML text or files to a validated :class:`runtime.model.Flow`."""

from __future__ import annotations

from pathlib import Path

from runtime.errors import FlowValidationError, Problem
from runtime.model._flow import Flow
from runtime.parsing._build import build_flow, format_path
from runtime.parsing._yaml import YamlLimits, YamlSyntaxError, load_yaml
from runtime.tasks._registry import TaskRegistry

__all__ = ("YamlLimits", "format_path", "load_flow", "parse_flow")


def parse_flow(
    text: str,
    source: str | None = None,
    *,
    limits: YamlLimits | None = None,
    registry: TaskRegistry | None = None,
) -> Flow:
    """Parse and validate a flow document.

    :raises FlowValidationError: listing every problem, each with ``source``, line,
        column and the path inside the flow.
    """
    try:
        located = load_yaml(text, limits)
    except YamlSyntaxError as exc:
        line, column = exc.mark if exc.mark else (None, None)
        problem = Problem(
            message=exc.message, path=format_path(exc.path), file=source, line=line, column=column
        )
        raise FlowValidationError([problem]) from None
    flow, problems = build_flow(located, source, registry)
    if problems or flow is None:
        raise FlowValidationError(problems or [Problem(message="invalid flow", file=source)])
    flow.source = text
    return flow


def load_flow(
    path: str | Path, *, limits: YamlLimits | None = None, registry: TaskRegistry | None = None
) -> Flow:
    """Read and validate the flow in the file at ``path``.

    :raises FlowValidationError: if the file is unreadable, not UTF-8, or invalid.
    """
    location = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FlowValidationError(
            [Problem(message=f"not UTF-8 text: {exc.reason}", file=location)]
        ) from None
    except OSError as exc:
        raise FlowValidationError(
            [Problem(message=f"cannot read file: {exc.strerror or exc}", file=location)]
        ) from None
    return parse_flow(text, location, limits=limits, registry=registry)
