"""The Jinja environment: an immutable sandbox speaking Pebble.

It starts from :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` and replaces what
Pebble does differently: the lexer and parser (``_lexer``, ``_parser``), the code
generator (``_nodes``), strict undefined values, how values print (``finalize``), and
the whole set of globals, filters and tests (Jinja's ``range``, ``cycler``, ``joiner``,
``lipsum``, ``namespace``, ``dict`` and its filters are gone). Attribute access, calls
and operators go through the sandbox hooks to the policy in ``_access`` and the
operators in ``_operators``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runtime.expressions import _runtime
from runtime.expressions._access import get_attribute, get_item
from runtime.expressions._errors import ExpressionLimitError, ExpressionSecurityError
from runtime.expressions._lexer import PebbleLexer
from runtime.expressions._nodes import PebbleCodeGenerator
from runtime.expressions._operators import (
    add,
    divide,
    floor_divide,
    modulo,
    multiply,
    negate,
    plus,
    power,
    subtract,
)
from runtime.expressions._parser import PebbleParser
from runtime.expressions._registry import CALLABLE_IDS, FILTERS, TESTS
from runtime.expressions._state import check_deadline
from runtime.expressions._text import to_text
from runtime.expressions._undefined import PebbleUndefined, fail

_BINARY = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "//": floor_divide,
    "%": modulo,
    "**": power,
}


class PebbleEnvironment(ImmutableSandboxedEnvironment):
    """A sandboxed Jinja environment that compiles Pebble templates."""

    code_generator_class = PebbleCodeGenerator
    intercepted_binops = frozenset(_BINARY)
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self, *, max_output_chars: int) -> None:
        super().__init__(
            undefined=PebbleUndefined,
            finalize=to_text,
            autoescape=False,
            keep_trailing_newline=True,
            optimized=False,
            cache_size=0,
            auto_reload=False,
        )
        self.max_output_chars = max_output_chars
        self.filters = dict(FILTERS)
        self.tests = dict(TESTS)
        self.globals = {}
        self.pebble_runtime = _runtime
        self._pebble_lexer = PebbleLexer(self)

    @property
    def lexer(self) -> PebbleLexer:
        """Jinja's lexer plus Pebble's ``?``, ``??``, ``???`` and ``..`` operators."""
        return self._pebble_lexer

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return PebbleParser(self, source, name, filename).parse()

    def parse_expression(self, source: str) -> nodes.Expr:
        """Parse a bare expression (no braces), as ``evaluate`` receives it."""
        parser = PebbleParser(self, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            parser.fail(f"unexpected {parser.stream.current.value!r} after the expression")
        return expression

    def concat(self, parts: Iterable[str]) -> str:
        """Join a captured block (macro, ``{% filter %}``, block ``set``), within the limit."""
        pieces = list(parts)
        size = sum(map(len, pieces))
        if size > self.max_output_chars:
            raise ExpressionLimitError(
                f"output of {size} characters exceeds the limit of {self.max_output_chars}"
            )
        return "".join(pieces)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Sandbox hook: the same policy as compiled ``a.b``."""
        return get_attribute(obj, attribute, "")

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Sandbox hook: the same policy as compiled ``a[b]``."""
        return get_item(obj, argument, "")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Sandbox hook for every call: only Pebble functions, macros and loops."""
        check_deadline()
        if isinstance(obj, PebbleUndefined):
            fail(obj)
        if id(obj) not in CALLABLE_IDS and not isinstance(obj, Macro | LoopContext):
            raise ExpressionSecurityError(f"calling a {type(obj).__name__} is not allowed")
        return context.call(obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Sandbox hook for arithmetic Jinja compiles itself: Pebble's operators."""
        return _BINARY[operator](left, right)

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        """Sandbox hook for unary ``-`` and ``+``."""
        return negate(arg) if operator == "-" else plus(arg)
