"""Jinja's lexer, taught Pebble's extra operators.

Pebble has ``?``/``:`` (ternary), ``??`` (null coalescing), ``???`` (undefined
coalescing, Kestra) and ``..`` (range). Jinja's operator rule does not know them; this
lexer swaps in a rule that does and hands them on as tokens of their own types, which
``_parser`` turns into nodes. Template text is otherwise lexed exactly as Jinja does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jinja2 import Environment
from jinja2.lexer import TOKEN_OPERATOR, Lexer, _Rule, operator_re, operators

#: Pebble operators Jinja lacks, and the token type each is handed on as.
EXTRA_OPERATORS = {
    "???": "undefined_coalesce",
    "??": "coalesce",
    "?": "question",
    "..": "range",
}

_ALL_OPERATORS = sorted([*operators, *EXTRA_OPERATORS], key=len, reverse=True)
_PEBBLE_OPERATOR_RE = re.compile("|".join(re.escape(symbol) for symbol in _ALL_OPERATORS))


class PebbleLexer(Lexer):
    """A Jinja lexer that also recognises ``?``, ``??``, ``???`` and ``..``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        for state, rules in self.rules.items():
            self.rules[state] = [_with_pebble_operators(rule) for rule in rules]

    def tokeniter(
        self,
        source: str,
        name: str | None,
        filename: str | None = None,
        state: str | None = None,
    ) -> Iterator[tuple[int, str, str]]:
        """Jinja's raw token stream, with Pebble's operators given their own types."""
        for lineno, token, value in super().tokeniter(source, name, filename, state):
            if token == TOKEN_OPERATOR and value in EXTRA_OPERATORS:
                yield lineno, EXTRA_OPERATORS[value], value
            else:
                yield lineno, token, value


def _with_pebble_operators(rule: _Rule) -> _Rule:
    if rule.pattern is operator_re:
        return _Rule(_PEBBLE_OPERATOR_RE, rule.tokens, rule.command)
    return rule
