"""Restart policies: when a supervisor restarts a child, how long it waits, when it gives up."""

from __future__ import annotations

import enum
import random
from collections import deque
from typing import Protocol

import msgspec

from actors._messages import Exit, ExitReason


class RestartType(enum.Enum):
    """Which exits of a child its supervisor answers with a restart (Erlang/OTP's terms)."""

    PERMANENT = "permanent"
    """Restarted whenever it ends by itself, failure or not."""
    TRANSIENT = "transient"
    """Restarted only when it fails."""
    TEMPORARY = "temporary"
    """Never restarted."""


class Backoff(Protocol):
    """Computes the wait before a restart."""

    def delay(self, restart: int, rng: random.Random) -> float:
        """Seconds to wait before restart number ``restart`` (1 for the first restart)."""
        ...


def _check_non_negative(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")


def _check_jitter(jitter: float) -> None:
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be between 0 and 1, got {jitter!r}")


def _jittered(base: float, jitter: float, rng: random.Random) -> float:
    if jitter == 0.0 or base == 0.0:
        return base
    return base * (1.0 + jitter * rng.uniform(-1.0, 1.0))


class ConstantBackoff(msgspec.Struct, frozen=True):
    """The same wait before every restart, optionally spread by ``jitter`` (a fraction)."""

    interval: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative(interval=self.interval)
        _check_jitter(self.jitter)

    def delay(self, restart: int, rng: random.Random) -> float:
        """``interval``, within ``interval * (1 ± jitter)``."""
        return _jittered(self.interval, self.jitter, rng)


class ExponentialBackoff(msgspec.Struct, frozen=True):
    """``interval * factor ** (restart - 1)`` capped by ``max_interval``, jittered, capped again."""

    interval: float
    factor: float = 2.0
    max_interval: float | None = None
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_non_negative(interval=self.interval, max_interval=self.max_interval)
        _check_jitter(self.jitter)
        if self.factor < 1.0:
            raise ValueError(f"factor must be >= 1, got {self.factor!r}")

    def delay(self, restart: int, rng: random.Random) -> float:
        """The exponential wait; never above ``max_interval`` when one is set."""
        try:
            base = self.interval * self.factor ** (max(restart, 1) - 1)
        except OverflowError:
            base = float("inf")
        if self.max_interval is not None:
            base = min(base, self.max_interval)
        value = _jittered(base, self.jitter, rng)
        if self.max_interval is not None:
            value = min(value, self.max_interval)
        return value


class RandomBackoff(msgspec.Struct, frozen=True):
    """A wait drawn uniformly between ``min_interval`` and ``max_interval``."""

    min_interval: float
    max_interval: float

    def __post_init__(self) -> None:
        _check_non_negative(min_interval=self.min_interval, max_interval=self.max_interval)
        if self.max_interval < self.min_interval:
            raise ValueError(
                f"max_interval ({self.max_interval!r}) is below "
                f"min_interval ({self.min_interval!r})"
            )

    def delay(self, restart: int, rng: random.Random) -> float:
        """A uniform draw in ``[min_interval, max_interval]``."""
        return rng.uniform(self.min_interval, self.max_interval)


class RestartPolicy(msgspec.Struct, frozen=True):
    """How a supervisor treats one child.

    ``max_attempts`` counts every incarnation including the first (``None``: no limit).
    ``max_duration`` bounds the whole series in seconds, from the first start: a restart
    that would begin at or after that bound is not made (``None``: no limit).
    """

    restart: RestartType = RestartType.TEMPORARY
    backoff: ConstantBackoff | ExponentialBackoff | RandomBackoff = ConstantBackoff()
    max_attempts: int | None = None
    max_duration: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        _check_non_negative(max_duration=self.max_duration)

    def wants_restart(self, exit: Exit) -> bool:
        """Whether this exit calls for a restart at all, before any budget is checked."""
        if exit.reason is ExitReason.KILLED:
            return False
        if self.restart is RestartType.PERMANENT:
            return True
        if self.restart is RestartType.TRANSIENT:
            return exit.failed
        return False


class RestartIntensity(msgspec.Struct, frozen=True):
    """More than ``max_restarts`` restarts within ``within`` seconds: the supervisor gives up."""

    max_restarts: int = 3
    within: float = 5.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {self.max_restarts!r}")
        if self.within <= 0:
            raise ValueError(f"within must be > 0, got {self.within!r}")


TEMPORARY = RestartPolicy()


class RestartWindow:
    """Counts restarts in a sliding window and tells when a :class:`RestartIntensity` is passed."""

    __slots__ = ("_intensity", "_times")

    def __init__(self, intensity: RestartIntensity) -> None:
        self._intensity = intensity
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Count a restart at ``now``; True if that makes more than allowed within the window.

        Times must not go backwards (they come from a monotonic clock).
        """
        times = self._times
        times.append(now)
        horizon = now - self._intensity.within
        while times[0] < horizon:
            times.popleft()
        return len(times) > self._intensity.max_restarts
