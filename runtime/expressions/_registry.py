"""Filters, tests and functions wrapped for templates.

Each wrapper refuses undefined arguments (strict variables; ``default``, ``defined``,
``null`` and ``empty`` excepted), checks the render deadline, and reports a wrong
number or name of arguments as :class:`ExpressionTypeError` naming the callable.
Filters and tests take Jinja's context so that Jinja never runs them at compile time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._filters import FILTERS as _RAW_FILTERS
from runtime.expressions._filters import LENIENT_FILTERS
from runtime.expressions._functions import FUNCTIONS as _RAW_FUNCTIONS
from runtime.expressions._functions import current_each_output
from runtime.expressions._predicates import LENIENT_TESTS
from runtime.expressions._predicates import TESTS as _RAW_TESTS
from runtime.expressions._state import check_deadline
from runtime.expressions._undefined import strict


def _strict_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in args:
        strict(value)
    for value in kwargs.values():
        strict(value)


def _wrong_call(kind: str, name: str, exc: TypeError) -> ExpressionTypeError:
    return ExpressionTypeError(f"{kind} '{name}': {exc}")


def wrap_filter(name: str, apply: Callable[..., Any], *, lenient: bool) -> Callable[..., Any]:
    """A filter as Jinja calls it: ``(context, value, *args, **kwargs)``."""

    @pass_context
    def run(context: Context, value: Any, /, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if not lenient:
            strict(value)
        _strict_arguments(args, kwargs)
        try:
            return apply(value, *args, **kwargs)
        except TypeError as exc:
            raise _wrong_call("filter", name, exc) from exc

    return run


def wrap_test(name: str, apply: Callable[..., bool], *, lenient: bool) -> Callable[..., bool]:
    """A test as Jinja calls it: ``(context, value, *args, **kwargs)``."""

    @pass_context
    def run(context: Context, value: Any, /, *args: Any, **kwargs: Any) -> bool:
        if not lenient:
            strict(value)
        _strict_arguments(args, kwargs)
        try:
            return apply(value, *args, **kwargs)
        except TypeError as exc:
            raise _wrong_call("test", name, exc) from exc

    return run


def wrap_function(name: str, apply: Callable[..., Any]) -> Callable[..., Any]:
    """A function as templates call it (the deadline is checked by the sandbox's call)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        _strict_arguments(args, kwargs)
        try:
            return apply(*args, **kwargs)
        except TypeError as exc:
            raise _wrong_call("function", name, exc) from exc

    return run


def _wrap_context_function(name: str, apply: Callable[..., Any]) -> Callable[..., Any]:
    @pass_context
    def run(context: Context, /, *args: Any, **kwargs: Any) -> Any:
        _strict_arguments(args, kwargs)
        try:
            return apply(context, *args, **kwargs)
        except TypeError as exc:
            raise _wrong_call("function", name, exc) from exc

    return run


FILTERS: dict[str, Callable[..., Any]] = {
    name: wrap_filter(name, apply, lenient=name in LENIENT_FILTERS)
    for name, apply in _RAW_FILTERS.items()
}
TESTS: dict[str, Callable[..., bool]] = {
    name: wrap_test(name, apply, lenient=name in LENIENT_TESTS)
    for name, apply in _RAW_TESTS.items()
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: (
        _wrap_context_function(name, apply)
        if apply is current_each_output
        else wrap_function(name, apply)
    )
    for name, apply in _RAW_FUNCTIONS.items()
}
#: Identity of every callable a template may call besides macros and loops.
CALLABLE_IDS = frozenset(id(function) for function in FUNCTIONS.values())
