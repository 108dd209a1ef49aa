"""Per-render state: deadline, size limit, hooks and variables, in a context variable.

A compiled template is shared by every render of the same source, so what belongs to one
render (its deadline, its hooks, the variables ``render()`` re-renders with) lives in a
:class:`contextvars.ContextVar` that the engine sets around each render.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from runtime.expressions._errors import ExpressionError, ExpressionLimitError

#: Limits that apply when nothing is rendering (a helper called directly in a test).
DEFAULT_MAX_CHARS = 1_000_000
#: Largest list ``range`` builds (Kestra's BoundedRangeFunction uses the same bound).
MAX_RANGE_SIZE = 1_000_000
#: Largest integer (in bits) that ``*`` and ``**`` may build.
MAX_INT_BITS = 4096
#: How deep ``render()`` may nest inside itself.
MAX_RENDER_DEPTH = 10


class RenderHooks(Protocol):
    """Runtime services that some expression functions need; every method is synchronous.

    The engine never builds these: the task runner passes one to ``render`` so that
    ``read()``, ``fileURI()``, ``errorLogs()`` and ``now()`` see the execution they
    render for.
    """

    def read(self, uri: str) -> str:
        """Content of an internal-storage file, for ``read(uri)``."""
        ...

    def file_uri(self, path: str) -> str:
        """Internal-storage URI of a namespace file, for ``fileURI(path)``."""
        ...

    def error_logs(self) -> list[dict[str, Any]]:
        """The execution's ERROR log entries, for ``errorLogs()``."""
        ...

    def now(self) -> datetime:
        """The current time (a virtual clock in tests), for ``now()``."""
        ...


Renderer = Callable[[str, Mapping[str, Any]], str]


@dataclass(slots=True)
class RenderState:
    """What one render needs beyond the compiled template."""

    deadline: float
    max_chars: int
    hooks: RenderHooks | None
    variables: Mapping[str, Any]
    renderer: Renderer
    depth: int = 0


_CURRENT: ContextVar[RenderState | None] = ContextVar("tiercel_render_state", default=None)


def activate(state: RenderState) -> Token[RenderState | None]:
    """Make ``state`` the current render state until :func:`deactivate` gets the token."""
    return _CURRENT.set(state)


def deactivate(token: Token[RenderState | None]) -> None:
    """Restore the render state that was current before :func:`activate`."""
    _CURRENT.reset(token)


def current() -> RenderState | None:
    """The state of the render in progress, or None outside a render."""
    return _CURRENT.get()


def check_deadline() -> None:
    """Raise :class:`ExpressionLimitError` if the current render ran past its deadline."""
    state = _CURRENT.get()
    if state is not None and time.monotonic() > state.deadline:
        raise ExpressionLimitError("render took longer than its time limit")


def max_chars() -> int:
    """Largest string or list the current render may build."""
    state = _CURRENT.get()
    return DEFAULT_MAX_CHARS if state is None else state.max_chars


def check_size(size: int, what: str) -> None:
    """Raise :class:`ExpressionLimitError` if a value of ``size`` would be too large."""
    limit = max_chars()
    if size > limit:
        raise ExpressionLimitError(f"{what} of {size} items exceeds the limit of {limit}")


def hooks_for(function: str) -> RenderHooks:
    """The current render's hooks, for ``function``.

    :raises ExpressionError: if the render was given no hooks.
    """
    state = _CURRENT.get()
    if state is None or state.hooks is None:
        raise ExpressionError(f"function '{function}' needs runtime hooks and none were given")
    return state.hooks
