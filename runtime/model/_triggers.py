"""Triggers: Schedule (cron), Flow (another flow ended), Webhook. Parsed and validated here;
the daemon runs them."""

from __future__ import annotations

import enum
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.model._common import Duration, Spec


class _Trigger(Spec, kw_only=True):
    id: str
    type: str
    description: str | None = None
    disabled: bool = False
    inputs: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] | None = None

    kestra_types: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[tuple[str, str]]:
        """Problems beyond types: ``(field, message)`` pairs."""
        return []


class ScheduleTrigger(_Trigger, kw_only=True):
    """Start an execution on a cron schedule, in ``timezone``."""

    cron: str
    timezone: str = "Etc/UTC"
    with_seconds: bool = False
    late_maximum_delay: Duration | None = None
    backfill: dict[str, Any] | None = None

    kestra_types = (
        "io.kestra.plugin.core.trigger.Schedule",
        "io.kestra.core.models.triggers.types.Schedule",
        "Schedule",
    )

    def problems(self) -> list[tuple[str, str]]:
        from croniter import croniter  # imported on first use: it is slow to import

        found: list[tuple[str, str]] = []
        fields = self.cron.split()
        expected = 6 if self.with_seconds else 5
        nicknames = (
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        )
        if self.cron.strip() in nicknames:
            pass
        elif len(fields) != expected or not croniter.is_valid(self.cron, second_at_beginning=True):
            shape = "6 fields (with seconds)" if self.with_seconds else "5 fields"
            found.append(("cron", f"invalid cron expression {self.cron!r}: expected {shape}"))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(("timezone", f"unknown time zone {self.timezone!r}"))
        return found


class FlowTrigger(_Trigger, kw_only=True):
    """Start an execution when another flow's execution ends (filtered by ``conditions``)."""

    states: list[str] | None = None

    kestra_types = (
        "io.kestra.plugin.core.trigger.Flow",
        "io.kestra.core.models.triggers.types.Flow",
        "Flow",
    )


class WebhookTrigger(_Trigger, kw_only=True):
    """Start an execution on a call to ``/api/v1/executions/webhook/{namespace}/{flowId}/{key}``."""

    key: str

    kestra_types = (
        "io.kestra.plugin.core.trigger.Webhook",
        "io.kestra.core.models.triggers.types.Webhook",
        "Webhook",
    )

    def problems(self) -> list[tuple[str, str]]:
        if not self.key.strip():
            return [("key", "must not be empty")]
        return []


class ConcurrencyBehavior(enum.Enum):
    """What happens to a new execution when the flow's concurrency limit is reached."""

    QUEUE = "QUEUE"
    CANCEL = "CANCEL"
    FAIL = "FAIL"


Trigger = ScheduleTrigger | FlowTrigger | WebhookTrigger

TRIGGER_CLASSES: dict[str, type[_Trigger]] = {
    name: cls for cls in (ScheduleTrigger, FlowTrigger, WebhookTrigger) for name in cls.kestra_types
}
