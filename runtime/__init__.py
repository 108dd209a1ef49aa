"""Tiercel's workflow engine, built on the ``actors`` kernel."""

from runtime._version import __version__

__all__ = ("__version__",)
