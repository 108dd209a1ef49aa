"""Errors of the stores that talk to a database server."""

from __future__ import annotations

from runtime.errors import TiercelError


class StoreError(TiercelError):
    """A store could not do what it was asked (base class of the errors below)."""


class StoreUrlError(StoreError, ValueError):
    """A store URL that cannot be used. Raised before any connection is tried, so that a
    daemon with a bad setting stops at once; the message names the URL (password hidden)
    and what is wrong with it."""


class StoreUnavailableError(StoreError):
    """The database could not be reached; the message says where the store tried."""


class StoreWriteError(StoreError):
    """Appended events could not be written, after retrying. ``flush`` raises it: what was
    appended since the last successful ``flush`` is not durable (the store keeps it and
    tries again at the next ``flush``)."""
