"""Task types: the registry and Kestra's core tasks (registered on import)."""

from runtime.tasks import core
from runtime.tasks._registry import TaskRegistry, registry, task_type

__all__ = ("TaskRegistry", "core", "registry", "task_type")
