"""Schedule and Flow triggers: what starts executions without anyone asking.

:class:`Scheduler` fires Schedule triggers (cron dates, in a time zone, durable and
idempotent); :class:`FlowTriggers` fires Flow triggers when executions end. Both run in
a task group next to a :class:`~runtime.engine.Runtime`::

    scheduler = Scheduler(runtime, missed=MissedSchedules.ALL, max_catch_up=1000)
    flow_triggers = FlowTriggers(runtime)
    async with anyio.create_task_group() as tg:
        await tg.start(scheduler.run)
        await tg.start(flow_triggers.run)
        ...
        scheduler.flows_changed()  # after adding, changing or deleting flows

The ``runtime.scheduling._*`` modules are private; everything public is here.
"""

from runtime.model._triggers import (
    CONDITION_CLASSES,
    Backfill,
    Condition,
    MissedSchedules,
    Preconditions,
    TimeWindow,
)
from runtime.scheduling._conditions import ConditionContext, ConditionError, holds
from runtime.scheduling._cron import Cron, CronError
from runtime.scheduling._flow_triggers import FLOW_TRIGGERS_NAMESPACE, FlowTriggers
from runtime.scheduling._ids import flow_trigger_execution_id, schedule_execution_id
from runtime.scheduling._schedules import (
    TRIGGERS_NAMESPACE,
    Scheduler,
    TriggerKey,
    TriggerState,
    java_iso,
)

__all__ = (
    "CONDITION_CLASSES",
    "FLOW_TRIGGERS_NAMESPACE",
    "TRIGGERS_NAMESPACE",
    "Backfill",
    "Condition",
    "ConditionContext",
    "ConditionError",
    "Cron",
    "CronError",
    "FlowTriggers",
    "MissedSchedules",
    "Preconditions",
    "Scheduler",
    "TimeWindow",
    "TriggerKey",
    "TriggerState",
    "flow_trigger_execution_id",
    "holds",
    "java_iso",
    "schedule_execution_id",
)
