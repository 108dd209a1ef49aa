"""Jinja's parser, with Pebble's expression grammar.

Jinja and Pebble agree on tags (``{% for %}``, ``{% if %}``, ``{% set %}``, macros,
whitespace control) but not on expressions, so expressions are parsed here by
precedence climbing over Pebble's operator table (Pebble's CoreExtension plus Kestra's
``??``/``???``/``in``):

=========================================  ==========
``or``                                     10
``and``                                    15
``is``, ``is not``, ``contains``, ``in``   20
``==`` ``equals`` ``!=`` ``<`` ``>`` ...   30
``+`` ``-``                                40
``*`` ``/`` ``%`` (``//``)                 60
(``**``, right-associative)                70
``|`` (filters)                            100
``~``                                      110
``..`` ``??`` ``???``                      120
unary ``not`` ``-`` ``+``                  500
=========================================  ==========

``cond ? a : b`` wraps a whole expression. So ``a ?? b | upper`` is ``(a ?? b) | upper``
and ``'a' ~ b | upper`` is ``('a' ~ b) | upper``, as in Kestra. Every operator becomes a
call to a helper in ``_runtime`` that implements Pebble's semantics.
"""

from __future__ import annotations

from typing import NoReturn

from jinja2 import nodes
from jinja2.parser import Parser

from runtime.expressions._access import check_name
from runtime.expressions._errors import ExpressionSecurityError
from runtime.expressions._functions import FUNCTIONS
from runtime.expressions._nodes import call, function
from runtime.expressions._predicates import LENIENT_TESTS

_PRECEDENCE = {
    "or": 10,
    "and": 15,
    "is": 20,
    "contains": 20,
    "in": 20,
    "not in": 20,
    "==": 30,
    "equals": 30,
    "!=": 30,
    "<": 30,
    ">": 30,
    "<=": 30,
    ">=": 30,
    "+": 40,
    "-": 40,
    "*": 60,
    "/": 60,
    "//": 60,
    "%": 60,
    "**": 70,
    "|": 100,
    "~": 110,
    "..": 120,
    "??": 120,
    "???": 120,
}
_UNARY_PRECEDENCE = 500
_RIGHT_ASSOCIATIVE = frozenset({"**"})

_TOKEN_OPERATORS = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "gt": ">",
    "lteq": "<=",
    "gteq": ">=",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "floordiv": "//",
    "mod": "%",
    "pow": "**",
    "pipe": "|",
    "tilde": "~",
    "range": "..",
    "coalesce": "??",
    "undefined_coalesce": "???",
}
_NAME_OPERATORS = frozenset({"or", "and", "is", "contains", "equals", "in"})

_HELPERS = {
    "==": "equals",
    "equals": "equals",
    "!=": "not_equals",
    "<": "less",
    ">": "greater",
    "<=": "less_or_equal",
    ">=": "greater_or_equal",
    "contains": "contains",
    "in": "is_in",
    "not in": "is_not_in",
    "+": "add",
    "-": "subtract",
    "*": "multiply",
    "/": "divide",
    "//": "floor_divide",
    "%": "modulo",
    "**": "power",
    "~": "concat",
    "..": "make_range",
}

_CONSTANTS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "null": None,
    "NULL": None,
    "none": None,
    "None": None,
    "NONE": None,
}

#: Jinja filters that exist only to reach object attributes.
_FORBIDDEN_FILTERS = frozenset({"attr", "map", "select", "reject", "selectattr", "rejectattr"})


class PebbleParser(Parser):
    """Parses Pebble expressions inside Jinja's tag structure."""

    # -- expressions --------------------------------------------------------------------

    def parse_expression(self, with_condexpr: bool = True) -> nodes.Expr:
        """An expression, with an optional ``? :`` around it."""
        expression = self._parse_binary(0)
        if self.stream.current.type != "question":
            return expression
        lineno = next(self.stream).lineno
        when_true = self.parse_expression()
        self.stream.expect("colon")
        when_false = self.parse_expression()
        test = call("ternary_bool", expression, lineno=lineno)
        return nodes.CondExpr(test, when_true, when_false, lineno=lineno)

    def _parse_binary(self, min_precedence: int) -> nodes.Expr:
        expression = self._parse_operand()
        while True:
            operator = self._peek_operator()
            if operator is None or _PRECEDENCE[operator] < min_precedence:
                return expression
            expression = self._parse_right(operator, expression)

    def _peek_operator(self) -> str | None:
        token = self.stream.current
        if token.type != "name":
            return _TOKEN_OPERATORS.get(token.type)
        if token.value == "not" and self.stream.look().test("name:in"):
            return "not in"
        return token.value if token.value in _NAME_OPERATORS else None

    def _parse_operand(self) -> nodes.Expr:
        token = self.stream.current
        if token.test("name:not"):
            next(self.stream)
            operand = self._parse_binary(_UNARY_PRECEDENCE)
            return nodes.Not(_truth(operand, "not"), lineno=token.lineno)
        if token.type in ("sub", "add"):
            next(self.stream)
            operand = self._parse_binary(_UNARY_PRECEDENCE)
            helper = "negate" if token.type == "sub" else "plus"
            return call(helper, operand, lineno=token.lineno)
        return self.parse_postfix(self.parse_primary())

    def _parse_right(self, operator: str, left: nodes.Expr) -> nodes.Expr:
        if operator == "|":
            result = self.parse_filter(left)
            assert result is not None
            return result
        if operator == "is":
            return self.parse_test(left)
        lineno = next(self.stream).lineno
        if operator == "not in":
            next(self.stream)
        precedence = _PRECEDENCE[operator] + (operator not in _RIGHT_ASSOCIATIVE)
        right = self._parse_binary(precedence)
        return _binary(operator, left, right, lineno)

    def parse_primary(self, with_namespace: bool = False) -> nodes.Expr:
        """Literals (with Pebble's ``null``/``TRUE``...), names, functions."""
        token = self.stream.current
        if token.type == "name":
            if token.value in _CONSTANTS:
                next(self.stream)
                return nodes.Const(_CONSTANTS[token.value], lineno=token.lineno)
            _check_variable_name(token.value)
            if token.value in FUNCTIONS and self.stream.look().type == "lparen":
                next(self.stream)
                return function(token.value, lineno=token.lineno)
        return super().parse_primary(with_namespace)

    def parse_subscript(self, node: nodes.Expr) -> nodes.Getattr | nodes.Getitem:
        """``a.b`` and ``a[b]``, refusing double-underscore names outright."""
        result = super().parse_subscript(node)
        if isinstance(result, nodes.Getattr):
            check_name(result.attr)
        elif isinstance(result.arg, nodes.Const) and isinstance(result.arg.value, str):
            check_name(result.arg.value)
        return result

    def parse_list(self) -> nodes.List:
        """A list literal; an undefined item fails when the list is built."""
        node = super().parse_list()
        node.items = [call("strict", item) for item in node.items]
        return node

    def parse_dict(self) -> nodes.Dict:
        """A map literal; an undefined key or value fails when the map is built."""
        node = super().parse_dict()
        for pair in node.items:
            pair.key, pair.value = call("strict", pair.key), call("strict", pair.value)
        return node

    def parse_filter(
        self, node: nodes.Expr | None, start_inline: bool = False
    ) -> nodes.Expr | None:
        """Filters, checked against the registry; ``default`` sees undefined input."""
        result = super().parse_filter(node, start_inline)
        current = result
        while isinstance(current, nodes.Filter) and current is not node:
            inner = current.node
            self._check_filter(current)
            if current.name == "default" and inner is not None:
                current.node = call("guard", inner, lineno=current.lineno)
            current = inner
        return result

    def _check_filter(self, node: nodes.Filter) -> None:
        if node.name in _FORBIDDEN_FILTERS:
            raise ExpressionSecurityError(f"the '{node.name}' filter is not allowed")
        if node.name not in self.environment.filters:
            self.fail(f"unknown filter '{node.name}'", node.lineno)

    def parse_test(self, node: nodes.Expr) -> nodes.Expr:
        """``x is name`` / ``x is not name``; ``defined``, ``null``, ``empty`` are guarded."""
        result = super().parse_test(node)
        test = result.node if isinstance(result, nodes.Not) else result
        assert isinstance(test, nodes.Test)
        if test.name not in self.environment.tests:
            self.fail(f"unknown test '{test.name}'", test.lineno)
        if test.name in LENIENT_TESTS:
            test.node = call("guard", test.node, lineno=test.lineno)
        return result

    # -- statements ---------------------------------------------------------------------

    def parse_if(self) -> nodes.If:
        """``{% if %}``, with Pebble's ``elseif`` as well as Jinja's ``elif``."""
        node = result = nodes.If(lineno=self.stream.expect("name:if").lineno)
        while True:
            node.test = _truth(self.parse_tuple(with_condexpr=False), "if")
            node.body = self.parse_statements(
                ("name:elif", "name:elseif", "name:else", "name:endif")
            )
            node.elif_, node.else_ = [], []
            token = next(self.stream)
            if token.test_any("name:elif", "name:elseif"):
                node = nodes.If(lineno=self.stream.current.lineno)
                result.elif_.append(node)
                continue
            if token.test("name:else"):
                result.else_ = self.parse_statements(("name:endif",), drop_needle=True)
            return result

    def parse_for(self) -> nodes.For:
        """``{% for %}`` over lists, maps (as key/value entries) and null (no iteration)."""
        node = super().parse_for()
        assert isinstance(node.iter, nodes.Expr)
        node.iter = call("iterate", node.iter, lineno=node.lineno)
        if isinstance(node.test, nodes.Expr):
            node.test = call("ternary_bool", node.test, lineno=node.lineno)
        return node

    def parse_set(self) -> nodes.Assign | nodes.AssignBlock:
        """``{% set %}``; assigning an undefined value fails at once, as in Pebble."""
        node = super().parse_set()
        if isinstance(node, nodes.Assign) and isinstance(node.node, nodes.Expr):
            node.node = call("strict", node.node, lineno=node.lineno)
        return node

    def parse_extends(self) -> NoReturn:
        """Refused: templates cannot load other templates."""
        _forbidden_tag("extends")

    def parse_include(self) -> NoReturn:
        """Refused: templates cannot load other templates."""
        _forbidden_tag("include")

    def parse_import(self) -> NoReturn:
        """Refused: templates cannot load other templates."""
        _forbidden_tag("import")

    def parse_from(self) -> NoReturn:
        """Refused: templates cannot load other templates."""
        _forbidden_tag("from")


def _truth(node: nodes.Expr, where: str) -> nodes.Expr:
    return call("to_bool", node, nodes.Const(where), lineno=node.lineno)


def _binary(operator: str, left: nodes.Expr, right: nodes.Expr, lineno: int) -> nodes.Expr:
    if operator == "or":
        return nodes.Or(_truth(left, "or"), _truth(right, "or"), lineno=lineno)
    if operator == "and":
        return nodes.And(_truth(left, "and"), _truth(right, "and"), lineno=lineno)
    if operator == "??":
        return call("coalesce", left, right, lineno=lineno)
    if operator == "???":
        return call("coalesce_undefined", left, right, lineno=lineno)
    return call(_HELPERS[operator], left, right, lineno=lineno)


def _check_variable_name(name: str) -> None:
    check_name(name)
    if name == "self":
        raise ExpressionSecurityError("access to 'self' is not allowed")


def _forbidden_tag(tag: str) -> NoReturn:
    raise ExpressionSecurityError(f"the '{tag}' tag is not allowed")
