"""Kestra's expressions (Pebble templates) on Jinja2's immutable sandbox.

``{{ outputs.extract.value }}``, ``{% for %}``, ``{% if %}``, ``a ? b : c``, ``a ?? b``,
Kestra's filters and functions: :class:`ExpressionEngine` compiles each distinct source
once and renders it in a sandbox that only reads the data it is given. Variables are
strict, as in Kestra: a missing one fails the render unless the branch that uses it is
never evaluated.

The ``runtime.expressions._*`` modules are private; everything public is here.
"""

from runtime.expressions._engine import CacheInfo, ExpressionEngine
from runtime.expressions._errors import (
    ExpressionError,
    ExpressionLimitError,
    ExpressionSecurityError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    UndefinedVariableError,
)
from runtime.expressions._state import RenderHooks
from runtime.expressions._truth import is_truthy

__all__ = (
    "CacheInfo",
    "ExpressionEngine",
    "ExpressionError",
    "ExpressionLimitError",
    "ExpressionSecurityError",
    "ExpressionSyntaxError",
    "ExpressionTypeError",
    "RenderHooks",
    "UndefinedVariableError",
    "is_truthy",
)
