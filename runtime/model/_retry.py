"""Retry policies as Kestra writes them (``retry:`` on a task or on the flow)."""

from __future__ import annotations

import enum

from runtime.model._common import Duration, Spec


class RetryBehavior(enum.Enum):
    """What a retry does: run the failed task again, or start a new execution."""

    RETRY_FAILED_TASK = "RETRY_FAILED_TASK"
    CREATE_NEW_EXECUTION = "CREATE_NEW_EXECUTION"


class _RetryBase(Spec, tag_field="type", kw_only=True):
    max_attempt: int | None = None
    max_attempts: int | None = None
    max_duration: Duration | None = None
    warning_on_retry: bool = False
    behavior: RetryBehavior = RetryBehavior.RETRY_FAILED_TASK

    def __post_init__(self) -> None:
        if self.max_attempt is not None and self.max_attempts is not None:
            raise ValueError("set either maxAttempt or maxAttempts, not both")
        attempts = self.attempts_limit
        if attempts is not None and attempts < 1:
            raise ValueError(f"maxAttempt must be at least 1, found {attempts}")

    @property
    def attempts_limit(self) -> int | None:
        """Attempts in all, the first included (``maxAttempt``/``maxAttempts``); None: no limit."""
        return self.max_attempt if self.max_attempt is not None else self.max_attempts


class ConstantRetry(_RetryBase, tag="constant", kw_only=True):
    """The same ``interval`` before every new attempt."""

    interval: Duration


class ExponentialRetry(_RetryBase, tag="exponential", kw_only=True):
    """``interval * delayFactor ** (n - 1)`` before attempt n+1, capped by ``maxInterval``."""

    interval: Duration
    max_interval: Duration
    delay_factor: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_interval < self.interval:
            raise ValueError(
                f"maxInterval ({self.max_interval.iso()}) is shorter than "
                f"interval ({self.interval.iso()})"
            )
        if self.delay_factor is not None and self.delay_factor < 1:
            raise ValueError(f"delayFactor must be at least 1, found {self.delay_factor}")


class RandomRetry(_RetryBase, tag="random", kw_only=True):
    """A wait drawn uniformly between ``minInterval`` and ``maxInterval``."""

    min_interval: Duration
    max_interval: Duration

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_interval < self.min_interval:
            raise ValueError(
                f"maxInterval ({self.max_interval.iso()}) is shorter than "
                f"minInterval ({self.min_interval.iso()})"
            )


Retry = ConstantRetry | ExponentialRetry | RandomRetry
RETRY_TYPES = ("constant", "exponential", "random")
