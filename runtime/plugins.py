"""Writing task types in Python: a decorated async function, or a Task subclass.

```python
from runtime.plugins import RunContext, task

@task("acme.Greet")
async def greet(ctx: RunContext, name: str, times: int = 1) -> dict[str, object]:
    \"\"\"Greets someone.\"\"\"
    ctx.log("INFO", f"hello {name}")
    return {"greeting": f"hello {name}" * times}
```

A flow then uses ``type: acme.Greet`` with properties ``name`` and ``times``. Property
values are rendered (expressions work in text properties) before the function is called;
the returned mapping becomes the task's outputs (anything else becomes ``value``).

Packages can ship task types through the entry point group ``tiercel.tasks``: each entry
point names a module (importing it registers its tasks) or a Task class.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Any

import msgspec
import structlog

from runtime.model import Task
from runtime.tasks import registry, task_type
from runtime.tasks._api import RunContext, StateStore, TaskFailedError

__all__ = (
    "ENTRY_POINT_GROUP",
    "RunContext",
    "StateStore",
    "Task",
    "TaskFailedError",
    "load_entry_points",
    "task",
    "task_type",
)

ENTRY_POINT_GROUP = "tiercel.tasks"

TaskFunction = Callable[..., Awaitable[Any]]


def task(name: str, *aliases: str) -> Callable[[TaskFunction], type[Task]]:
    """Register an async function ``f(ctx, **properties)`` as the task type ``name``.

    The parameters after the run context become the task's properties (snake_case names
    are written in camelCase in flows), with their annotations as types and their
    defaults as defaults.

    :raises TypeError: if the function is not async or has no run-context parameter.
    """

    def decorate(function: TaskFunction) -> type[Task]:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"{function.__qualname__} must be an async function")
        parameters = list(inspect.signature(function).parameters.values())
        if not parameters:
            raise TypeError(f"{function.__qualname__} must take the run context first")
        hints = typing.get_type_hints(function)
        fields: list[Any] = []
        for parameter in parameters[1:]:
            kind = hints.get(parameter.name, Any)
            if parameter.default is inspect.Parameter.empty:
                fields.append((parameter.name, kind))
            else:
                fields.append((parameter.name, kind, parameter.default))
        names = [parameter.name for parameter in parameters[1:]]

        async def run(self: Task, ctx: RunContext) -> dict[str, Any] | None:
            arguments = {n: ctx.render(getattr(self, n)) for n in names}
            result = await function(ctx, **arguments)
            if result is None or isinstance(result, dict):
                return result
            return {"value": result}

        cls: type[Task] = msgspec.defstruct(  # type: ignore[assignment]
            function.__name__,
            fields,
            bases=(Task,),
            kw_only=True,
            module=function.__module__,
            namespace={"run": run, "__doc__": function.__doc__},
        )
        task_type(name, *aliases)(cls)
        functools.update_wrapper(cls, function, assigned=("__doc__",), updated=())
        return cls

    return decorate


@functools.cache
def load_entry_points() -> list[str]:
    """Import every ``tiercel.tasks`` entry point once; return the names loaded.

    A broken plugin is logged and skipped: it must not stop the runtime.
    """
    loaded: list[str] = []
    log = structlog.get_logger("tiercel.plugins")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            value = entry.load()
        except Exception as exc:
            log.exception("task plugin failed to load", entry_point=entry.name, error=repr(exc))
            continue
        if isinstance(value, type) and issubclass(value, Task) and value not in registry.classes():
            registry.register(value, entry.name)
        loaded.append(entry.name)
    return loaded
