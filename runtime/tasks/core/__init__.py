"""Kestra's core tasks. Importing this package registers them all."""

from runtime.tasks.core import debug, execution, flow, kv, log, output, scripts, state

__all__ = ("debug", "execution", "flow", "kv", "log", "output", "scripts", "state")
