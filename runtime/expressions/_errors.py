"""The expression engine's exception tree.

```
ExpressionError                 anything that stops an expression from rendering
├── ExpressionSyntaxError       the template does not parse
├── UndefinedVariableError      a variable, key or attribute that is not there was used
├── ExpressionTypeError         operands or arguments of the wrong type
├── ExpressionSecurityError     the template reached for something the sandbox forbids
└── ExpressionLimitError        output too large, render too long, a value too big
```

Every error carries ``expression``, the template source it came from, and ``problem``,
the message without that source. Code deep inside the engine raises them without the
source; the engine's public methods fill it in on the way out.
"""

from __future__ import annotations

_SHOWN_CHARS = 300


class ExpressionError(Exception):
    """Base of every error raised while compiling or rendering an expression.

    It exists so that callers (a task's property rendering, a ``runIf``) can catch one
    type and fail the task run with a message naming the problem and the expression.
    """

    def __init__(
        self, problem: str, *, expression: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.expression = expression
        self.line = line

    def __str__(self) -> str:
        if self.expression is None:
            return self.problem
        where = "" if self.line is None else f" at line {self.line}"
        return f"{self.problem} in {self.shown_expression}{where}"

    @property
    def shown_expression(self) -> str:
        """The expression, cut to a few hundred characters for messages."""
        shown = self.expression or ""
        return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "…"


class ExpressionSyntaxError(ExpressionError):
    """Raised when a template does not parse: unknown tag, filter or test, bad token.

    It exists so that a flow can be rejected when it is validated, before anything
    runs; ``line`` and ``column`` locate the problem inside the template when known.
    """

    def __init__(
        self,
        problem: str,
        *,
        expression: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(problem, expression=expression, line=line)
        self.column = column


class UndefinedVariableError(ExpressionError):
    """Raised when an evaluated expression uses a name, key or attribute that is absent.

    Kestra renders with strict variables: ``{{ outputs.missing }}`` fails the task run
    instead of printing nothing. ``name`` is the missing name or dotted path, such as
    ``outputs.notexists``; ``attribute`` is the segment that was not found (``notexists``),
    which Kestra's own message names. Branches that are not evaluated never raise it, and
    ``is defined``, ``??`` and ``| default`` turn it into a value.
    """

    def __init__(
        self,
        name: str,
        *,
        attribute: str | None = None,
        expression: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(f"missing variable '{name}'", expression=expression, line=line)
        self.name = name
        self.attribute = attribute or name

    def __str__(self) -> str:
        if self.expression is None:
            return self.problem
        return (
            f"{self.problem}: Unable to find `{self.attribute}` used in the expression "
            f"`{self.shown_expression}` at line {self.line or 1}"
        )


class ExpressionTypeError(ExpressionError):
    """Raised when an operator, filter, function or test gets values it cannot handle.

    Examples: ``'a' - 1``, ``{{ [1] | upper }}``, ``date`` given an unparseable string,
    or a ``null`` used as an ``if`` condition (Pebble's strict mode forbids it).
    """


class ExpressionSecurityError(ExpressionError):
    """Raised when a template reaches for something outside the data it was given.

    Python internals (``__class__``, ``mro``, ``func_globals``...), ``str.format``
    tricks, Jinja tags that load other templates: all end here, so a template written
    by a flow author can read its context and nothing else.
    """


class ExpressionLimitError(ExpressionError):
    """Raised when rendering would exceed a resource limit.

    The limits (output size, render time, ``range`` length, the size of strings,
    lists and integers built by operators) keep one bad expression from exhausting the
    memory or the CPU of the process that renders it.
    """
