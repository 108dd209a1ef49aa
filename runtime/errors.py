"""Tiercel's exception tree, in one place.

```
TiercelError
├── FlowValidationError     a flow document is invalid (every problem, with file:line:column)
├── InputValidationError    execution inputs do not fit the flow's declared inputs
├── UnknownTaskTypeError    a task type is not registered
└── ExecutionError          (engine errors; see runtime.engine)
```
Expression errors live in :mod:`runtime.expressions` and derive from ``ExpressionError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


class TiercelError(Exception):
    """Base class of Tiercel's own errors."""


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing wrong with a document: where it is and what was expected.

    ``path`` is the location inside the document (``tasks[2].retry.interval``); ``line``
    and ``column`` are 1-based and None when the document had no position for it.
    """

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file or "<flow>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        at = f" {self.path}:" if self.path else ""
        return f"{where}:{at} {self.message}"


class FlowValidationError(TiercelError):
    """Raised when a flow document is invalid; ``problems`` lists every problem found.

    Several problems are reported at once so that a user fixes a file in one go.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in flow"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class InputValidationError(TiercelError):
    """Raised when execution inputs are missing, unknown or of the wrong type.

    Raised before anything runs, naming each input at fault.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid inputs:\n" + "\n".join(f"  {p.message}" for p in self.problems))


class UnknownTaskTypeError(TiercelError, LookupError):
    """Raised when looking up a task type that no plugin registered."""

    def __init__(self, type_name: str, suggestions: Sequence[str] = ()) -> None:
        hint = f"; did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else ""
        super().__init__(f"unknown task type {type_name!r}{hint}")
        self.type_name = type_name
        self.suggestions = list(suggestions)
