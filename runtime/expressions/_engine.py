"""The public engine: compile once per source, render many times, within limits."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal, NamedTuple, NoReturn

from jinja2 import Template, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError

from runtime.expressions._environment import PebbleEnvironment
from runtime.expressions._errors import (
    ExpressionError,
    ExpressionLimitError,
    ExpressionSecurityError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    UndefinedVariableError,
)
from runtime.expressions._nodes import call
from runtime.expressions._state import RenderHooks, RenderState, activate, deactivate
from runtime.expressions._text import to_text
from runtime.expressions._undefined import MissingVariable

_Kind = Literal["template", "expression"]
_SINGLE_EXPRESSION = re.compile(r"\s*\{\{(.*)\}\}\s*", re.S)
_PLAIN_PATH = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_JINJA_WORDS = frozenset({"true", "false", "none", "null", "True", "False", "None", "NULL"})
_TAG_STARTS = frozenset({"block_begin", "comment_begin", "raw_begin", "linestatement_begin"})


class CacheInfo(NamedTuple):
    """Statistics of the compiled-template cache, as :func:`functools.lru_cache` keeps."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


_RENDER_CALL = re.compile(r"\brender\s*\(")


def has_markers(text: str) -> bool:
    """True if ``text`` contains ``{{``, ``{%`` or ``{#`` and so needs rendering."""
    return "{{" in text or "{%" in text or "{#" in text


class ExpressionEngine:
    """Renders Kestra-style (Pebble) expressions on Jinja2's immutable sandbox.

    Compiled templates are cached by source (LRU, ``cache_size`` entries); a string with
    no ``{{``, ``{%`` or ``{#`` is returned as it is without touching Jinja. Every
    render is bounded by ``max_output_chars`` (also the largest string or list an
    operator may build) and ``max_render_seconds`` (checked at loop iterations, calls
    and filters: Python code cannot be interrupted in between).

    Every method raises only :class:`ExpressionError` subclasses, whose ``expression``
    is the template or expression being rendered.
    """

    def __init__(
        self,
        *,
        max_output_chars: int = 1_000_000,
        max_render_seconds: float = 5.0,
        cache_size: int = 4096,
    ) -> None:
        if max_output_chars <= 0 or max_render_seconds <= 0 or cache_size < 0:
            raise ValueError("limits must be positive and cache_size not negative")
        self._environment = PebbleEnvironment(max_output_chars=max_output_chars)
        self._max_output_chars = max_output_chars
        self._max_render_seconds = max_render_seconds
        self._compile = lru_cache(maxsize=cache_size)(self._compile_uncached)
        self._single_expression = lru_cache(maxsize=cache_size)(self._single_expression_uncached)
        self._plain_path = lru_cache(maxsize=cache_size)(_plain_path)

        self._roots = lru_cache(maxsize=cache_size)(self._roots_uncached)

    # -- public API ---------------------------------------------------------------------

    def root_names(self, template: str) -> frozenset[str] | None:
        """The variables a template reads at its top level (``outputs`` for
        ``{{ outputs.a.value }}``), or None when that cannot be known (it does not parse,
        or it renders other text with ``render``, whose variables are unknown)."""
        if not has_markers(template):
            return frozenset()
        return self._roots(template)

    def _roots_uncached(self, template: str) -> frozenset[str] | None:
        if _RENDER_CALL.search(template):
            return None
        try:
            tree = self._environment.parse(template)
        except Exception:  # a template that does not parse fails where it renders
            return None
        return frozenset(meta.find_undeclared_variables(tree))

    def render(
        self, template: str, context: Mapping[str, Any], hooks: RenderHooks | None = None
    ) -> str:
        """Render ``template`` with ``context`` and return the text.

        :raises ExpressionSyntaxError: if the template does not parse.
        :raises UndefinedVariableError: if an evaluated branch uses a missing variable.
        :raises ExpressionTypeError: for operands or arguments of the wrong type.
        :raises ExpressionSecurityError: if the template reaches outside its data.
        :raises ExpressionLimitError: if the output or the render time exceeds the limits.
        """
        if not has_markers(template):
            return template
        path = self._plain_path(template)
        if path is not None:
            # Fast path for the commonest template, "{{ a.b.c }}" over plain data: the same
            # value Jinja would find, printed the same way. Anything else (a missing key,
            # an object) takes the full path below, with its errors.
            value: Any = context
            for key in path:
                if type(value) is not dict or key not in value:
                    break
                value = value[key]
            else:
                text = to_text(value)
                if len(text) <= self._max_output_chars:
                    return text
        token = activate(self._state(context, hooks))
        compiled = None
        try:
            compiled = self._compile("template", template)
            return self._run(compiled, context)
        except Exception as exc:
            _raise_public(exc, template, compiled)
        finally:
            deactivate(token)

    def render_value(
        self, value: Any, context: Mapping[str, Any], hooks: RenderHooks | None = None
    ) -> Any:
        """Render every string inside ``value``: map keys and values, list and tuple items.

        Other scalars are returned unchanged. When two keys render to the same text, the
        first one wins, as in Kestra's ``renderMap``. Raises as :meth:`render`.
        """
        if isinstance(value, str):
            return self.render(value, context, hooks)
        if isinstance(value, Mapping):
            rendered: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.render(key, context, hooks) if isinstance(key, str) else key
                if new_key not in rendered:
                    rendered[new_key] = self.render_value(item, context, hooks)
            return rendered
        if isinstance(value, list):
            return [self.render_value(item, context, hooks) for item in value]
        if isinstance(value, tuple):
            return tuple(self.render_value(item, context, hooks) for item in value)
        return value

    def render_typed(
        self, template: str, context: Mapping[str, Any], hooks: RenderHooks | None = None
    ) -> Any:
        """The value of ``template`` when it is exactly one ``{{ expression }}``.

        Surrounding whitespace is allowed; the value keeps its type (a list stays a list,
        ``null`` stays ``None``). Any other template is rendered to text by
        :meth:`render`. Raises as :meth:`render`.
        """
        if not has_markers(template):
            return template
        inner = self._single_expression(template)
        if inner is None:
            return self.render(template, context, hooks)
        return self._evaluate(inner, template, context, hooks)

    def evaluate(
        self, expression: str, context: Mapping[str, Any], hooks: RenderHooks | None = None
    ) -> Any:
        """The value of a bare expression (no braces), such as ``outputs.a.value == 2``.

        Raises as :meth:`render`; a missing variable raises even when the expression is
        just that variable.
        """
        return self._evaluate(expression, expression, context, hooks)

    def cache_info(self) -> CacheInfo:
        """Hits and misses of the compiled-template cache (misses count compilations)."""
        info = self._compile.cache_info()
        return CacheInfo(info.hits, info.misses, info.maxsize or 0, info.currsize)

    # -- rendering ----------------------------------------------------------------------

    def _state(self, context: Mapping[str, Any], hooks: RenderHooks | None) -> RenderState:
        return RenderState(
            deadline=time.monotonic() + self._max_render_seconds,
            max_chars=self._max_output_chars,
            hooks=hooks,
            variables=context,
            renderer=self._render_nested,
        )

    def _render_nested(self, template: str, context: Mapping[str, Any]) -> str:
        """``render()`` inside a render: same deadline and hooks, its own error source."""
        if not has_markers(template):
            return template
        compiled = None
        try:
            compiled = self._compile("template", template)
            return self._run(compiled, context)
        except Exception as exc:
            _raise_public(exc, template, compiled)

    def _run(self, template: Template, context: Mapping[str, Any]) -> str:
        jinja_context = template.new_context(_as_dict(context), shared=True)
        limit = self._max_output_chars
        size = 0
        parts: list[str] = []
        for chunk in template.root_render_func(jinja_context):
            size += len(chunk)
            if size > limit:
                raise ExpressionLimitError(f"output exceeds the limit of {limit} characters")
            parts.append(chunk)
        return "".join(parts)

    def _evaluate(
        self,
        expression: str,
        source: str,
        context: Mapping[str, Any],
        hooks: RenderHooks | None,
    ) -> Any:
        token = activate(self._state(context, hooks))
        try:
            template = self._compile("expression", expression)
            jinja_context = template.new_context(_as_dict(context), shared=True)
            for _ in template.root_render_func(jinja_context):
                pass
            return jinja_context.vars["result"]
        except Exception as exc:
            _raise_public(exc, source, None)
        finally:
            deactivate(token)

    # -- compiling ----------------------------------------------------------------------

    def _compile_uncached(self, kind: _Kind, source: str) -> Template:
        environment = self._environment
        if kind == "template":
            return environment.from_string(source)
        expression = environment.parse_expression(source)
        target = nodes.Name("result", "store", lineno=1)
        body: list[nodes.Node] = [nodes.Assign(target, call("strict", expression), lineno=1)]
        tree = nodes.Template(body, lineno=1)
        tree.set_environment(environment)
        return environment.from_string(tree)

    def _single_expression_uncached(self, template: str) -> str | None:
        match = _SINGLE_EXPRESSION.fullmatch(template)
        if match is None:
            return None
        try:
            tokens = [token for _, token, _ in self._environment.lexer.tokeniter(template, None)]
        except TemplateSyntaxError:
            return None
        if tokens.count("variable_begin") != 1 or _TAG_STARTS.intersection(tokens):
            return None
        inner = match.group(1)
        inner = inner[1:] if inner[:1] in ("-", "+") else inner
        return inner[:-1] if inner[-1:] in ("-", "+") else inner


def _as_dict(context: Mapping[str, Any]) -> dict[str, Any]:
    return context if isinstance(context, dict) else dict(context)


def _raise_public(exc: Exception, source: str, template: Template | None) -> NoReturn:
    error = public_error(exc, source)
    if error.line is None and template is not None:
        error.line = _template_line(exc, template)
    if error is exc:
        raise error
    raise error from exc


def _template_line(exc: Exception, template: Template) -> int | None:
    """The template line of the innermost frame of ``template`` in the traceback."""
    namespace = template.root_render_func.__globals__
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_globals is namespace:
            line = template.get_corresponding_lineno(trace.tb_lineno)
        trace = trace.tb_next
    return line


def public_error(exc: Exception, source: str) -> ExpressionError:
    """The :class:`ExpressionError` to raise for ``exc`` raised while handling ``source``."""
    if isinstance(exc, ExpressionError):
        if exc.expression is None:
            exc.expression = source
        return exc
    if isinstance(exc, MissingVariable):
        return UndefinedVariableError(exc.name, attribute=exc.attribute, expression=source)
    if isinstance(exc, TemplateSyntaxError):
        return ExpressionSyntaxError(
            exc.message or "invalid syntax", expression=source, line=exc.lineno
        )
    if isinstance(exc, SecurityError):
        return ExpressionSecurityError(str(exc), expression=source)
    if isinstance(exc, RecursionError | MemoryError):
        return ExpressionLimitError(
            f"expression is too deep or too large ({exc})", expression=source
        )
    if isinstance(exc, TemplateError):
        return ExpressionError(str(exc), expression=source)
    if isinstance(exc, TypeError | ValueError | LookupError | AttributeError | ArithmeticError):
        return ExpressionTypeError(f"{type(exc).__name__}: {exc}", expression=source)
    return ExpressionError(f"{type(exc).__name__}: {exc}", expression=source)


def _plain_path(template: str) -> tuple[str, ...] | None:
    """The keys of a template that is exactly ``{{ a.b.c }}``, else None."""
    match = _PLAIN_PATH.fullmatch(template)
    if match is None:
        return None
    keys = tuple(match.group(1).split("."))
    if keys[0] in _JINJA_WORDS or any(key.startswith("_") for key in keys):
        return None
    return keys
