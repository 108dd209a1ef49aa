"""Execution ids derived from what caused them, so that firing twice starts once."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime


def derived_id(*parts: str) -> str:
    """22 characters of URL-safe base 64 (like runtime ids) from a hash of ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(digest[:16])[:22].decode()


def instant_text(instant: datetime) -> str:
    """An instant as UTC ISO-8601 text, to the microsecond (the same instant, the same text)."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def schedule_execution_id(namespace: str, flow_id: str, trigger_id: str, date: datetime) -> str:
    """The id of the execution a Schedule starts for ``date``."""
    return derived_id("schedule", namespace, flow_id, trigger_id, instant_text(date))


def flow_trigger_execution_id(
    execution_id: str, ended: datetime, namespace: str, flow_id: str, trigger_id: str
) -> str:
    """The id of the execution a Flow trigger of ``namespace.flow_id`` starts when the
    execution ``execution_id`` ends at ``ended`` (a restarted execution ends again later)."""
    return derived_id("flow", execution_id, instant_text(ended), namespace, flow_id, trigger_id)
