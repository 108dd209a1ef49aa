"""The task type registry: Kestra type names (and their older aliases) to task classes."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TypeVar

from runtime.errors import UnknownTaskTypeError
from runtime.model._task import Task

T = TypeVar("T", bound=type[Task])


class TaskRegistry:
    """Maps every accepted type name to its task class.

    A class is registered under its Kestra name, any number of aliases (Kestra's older
    ``io.kestra.core.tasks...`` names) and Tiercel's short name.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, type[Task]] = {}
        self._canonical: dict[type[Task], str] = {}

    def register(self, cls: type[Task], name: str, *aliases: str) -> None:
        """Register ``cls`` under ``name`` (its canonical name) and ``aliases``.

        :raises ValueError: if a name is already taken by another class.
        """
        for each in (name, *aliases):
            existing = self._by_name.get(each)
            if existing is not None and existing is not cls:
                raise ValueError(f"task type {each!r} is already registered by {existing!r}")
            self._by_name[each] = cls
        self._canonical[cls] = name

    def lookup(self, name: str) -> type[Task]:
        """The class registered under ``name``.

        :raises UnknownTaskTypeError: with close matches as suggestions.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTaskTypeError(name, self.suggest(name)) from None

    def suggest(self, name: str) -> list[str]:
        """Registered names close to ``name`` (by full name, then by last segment)."""
        canonical = list(self._canonical.values())
        close = difflib.get_close_matches(name, canonical, n=2, cutoff=0.75)
        if close:
            return close
        tail = name.rsplit(".", 1)[-1]
        by_tail = {n.rsplit(".", 1)[-1]: n for n in canonical}
        return [by_tail[t] for t in difflib.get_close_matches(tail, list(by_tail), n=2, cutoff=0.7)]

    def canonical_name(self, cls: type[Task]) -> str:
        """The Kestra name ``cls`` was registered under."""
        return self._canonical[cls]

    def names(self) -> list[str]:
        """Every accepted name, sorted."""
        return sorted(self._by_name)

    def classes(self) -> Iterable[type[Task]]:
        """Every registered class."""
        return self._canonical.keys()


registry = TaskRegistry()
"""The process-wide registry that ``task_type`` registers into."""


def task_type(name: str, *aliases: str) -> Callable[[T], T]:
    """Class decorator: register a task class in the default registry."""

    def decorate(cls: T) -> T:
        registry.register(cls, name, *aliases)
        return cls

    return decorate
