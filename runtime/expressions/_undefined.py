"""Strict undefined values: Pebble's ``strictVariables(true)`` on Jinja's Undefined.

A missing name, key or attribute evaluates to a :class:`PebbleUndefined` that remembers
its dotted path (``outputs.notexists``) and the segment that was not found (``notexists``,
what Kestra's message calls the attribute). Looking further into it yields another
undefined with a longer path, so ``outputs.a.b.c is defined`` is simply false; using it
in any other way (printing, comparing, iterating, passing it to a filter) raises
:class:`MissingVariable`, which the engine turns into ``UndefinedVariableError``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from jinja2 import StrictUndefined, Undefined, UndefinedError
from jinja2.utils import missing


class MissingVariable(UndefinedError):  # noqa: N818 - mirrors Jinja's UndefinedError
    """Internal: a strict undefined value was used.

    ``name`` is its dotted path, ``attribute`` the segment that was not found.
    """

    def __init__(self, name: str | None = None, attribute: str | None = None) -> None:
        super().__init__(name)
        self.name = name or "?"
        self.attribute = attribute or self.name


class PebbleUndefined(StrictUndefined):
    """An undefined value that fails as soon as it is used, naming its dotted path."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[UndefinedError] = MissingVariable,
    ) -> None:
        super().__init__(hint, obj, name, MissingVariable)

    @property
    def path(self) -> str:
        """The missing name or dotted path."""
        return self._undefined_name or "?"

    @property
    def attribute(self) -> str:
        """The first segment of the path that was not found."""
        return self._undefined_hint or self.path

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise MissingVariable(self.path, self.attribute)


def _use_pebble_failure() -> None:
    """Point every operator Jinja aliases to its failure method at ours."""
    base = Undefined._fail_with_undefined_error
    for owner in (Undefined, StrictUndefined):
        for name, value in vars(owner).items():
            if value is base and name != "_fail_with_undefined_error":
                setattr(PebbleUndefined, name, PebbleUndefined._fail_with_undefined_error)


_use_pebble_failure()


def undefined(path: str, attribute: str | None = None) -> PebbleUndefined:
    """A new undefined value for ``path`` whose missing segment is ``attribute``."""
    return PebbleUndefined(hint=attribute, name=path)


def fail(value: PebbleUndefined) -> NoReturn:
    """Raise the error for using ``value``."""
    value._fail_with_undefined_error()


def strict(value: Any) -> Any:
    """Return ``value``, or raise :class:`MissingVariable` if it is undefined."""
    if isinstance(value, PebbleUndefined):
        fail(value)
    return value
