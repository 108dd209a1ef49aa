"""Cron expressions evaluated on the wall clock of a time zone, daylight saving included.

croniter does the calendar arithmetic on naive wall-clock times; this module maps those
wall times to instants and keeps the instants strictly increasing.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runtime.model._triggers import cron_problem

if TYPE_CHECKING:
    from croniter import croniter

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)


class CronError(ValueError):
    """A cron expression or time zone that cannot be evaluated (with the reason)."""


class Cron:
    """A cron expression whose times are wall-clock times in ``timezone``.

    Five fields (minute hour day-of-month month day-of-week), six with seconds first when
    ``with_seconds``, or a nickname (``@hourly``, ``@daily``...). When both day fields
    are restricted, a date matches either (as in Vixie cron).

    Daylight saving time: each matching wall time fires at the instant it names in the
    zone. A wall time skipped when clocks go forward (02:30 on a spring-forward night in
    Europe/Paris) fires once, at the instant it maps to with the offset in force before
    the change, that is shifted forward by the gap (03:30 CEST, as Java's
    ``ZonedDateTime`` does). A wall time that happens twice when clocks go back fires
    once, at its first occurrence. Fire instants are strictly increasing: two wall
    times that map to the same instant fire once.

    :raises CronError: if the expression or the zone is invalid.
    """

    def __init__(self, expression: str, timezone: str = "Etc/UTC", *, with_seconds: bool = False):
        problem = cron_problem(expression, with_seconds)
        if problem is not None:
            raise CronError(problem)
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(f"unknown time zone {timezone!r}") from None
        self.expression = expression.strip()
        self.timezone = timezone
        self.with_seconds = with_seconds

    def __repr__(self) -> str:
        return f"Cron({self.expression!r}, {self.timezone!r}, with_seconds={self.with_seconds})"

    def local(self, instant: datetime) -> datetime:
        """``instant`` in the zone (to print it; compute with UTC instants: Python
        compares and adds datetimes of one zone by their wall-clock times)."""
        return instant.astimezone(self.zone)

    def next_after(self, instant: datetime) -> datetime | None:
        """The first fire instant strictly after ``instant`` (UTC), or None."""
        return next(self.iter_after(instant), None)

    def previous_before(self, instant: datetime) -> datetime | None:
        """The last fire instant strictly before ``instant`` (UTC), or None."""
        return next(self.iter_before(instant), None)

    def iter_after(self, instant: datetime) -> Iterator[datetime]:
        """Fire instants strictly after ``instant``, increasing, in UTC (endless unless
        the expression stops matching)."""
        after = _floor(_utc(instant))
        low, _ = self._offsets(after)
        walls = self._walls(_naive(after + low), forward=True)
        pending: list[datetime] = []
        last = after
        for wall in walls:
            heapq.heappush(pending, self._instant(wall))
            _, high = self._offsets(_aware(wall))
            # A later wall time maps to at least (wall - highest offset): what is below is final.
            threshold = _aware(wall) - high
            while pending and pending[0] <= threshold:
                found = heapq.heappop(pending)
                if found > last:
                    last = found
                    yield found
        for found in sorted(pending):
            if found > last:
                last = found
                yield found

    def iter_before(self, instant: datetime) -> Iterator[datetime]:
        """Fire instants strictly before ``instant``, decreasing, in UTC."""
        before = _ceil(_utc(instant))
        _, high = self._offsets(before)
        walls = self._walls(_naive(before + high), forward=False)
        pending: list[tuple[float, datetime]] = []  # a max-heap: (-timestamp, instant)
        last = before
        for wall in walls:
            found = self._instant(wall)
            heapq.heappush(pending, (-found.timestamp(), found))
            low, _ = self._offsets(_aware(wall))
            # An earlier wall time maps to at most (wall - lowest offset).
            threshold = _aware(wall) - low
            while pending and pending[0][1] >= threshold:
                _, found = heapq.heappop(pending)
                if found < last:
                    last = found
                    yield found
        for found in sorted((f for _, f in pending), reverse=True):
            if found < last:
                last = found
                yield found

    # -- internals ----------------------------------------------------------------------

    def _iterator(self, start: datetime) -> croniter:
        from croniter import croniter  # slow to import: on first use

        return croniter(self.expression, start, second_at_beginning=True)

    def _walls(self, start: datetime, *, forward: bool) -> Iterator[datetime]:
        """Matching naive wall times strictly after (or before) ``start``."""
        from croniter import CroniterBadDateError

        iterator = self._iterator(start)
        step = iterator.get_next if forward else iterator.get_prev
        while True:
            try:
                wall = step(datetime)
            except CroniterBadDateError:
                return
            yield wall

    def _instant(self, wall: datetime) -> datetime:
        """The UTC instant a naive wall time names (fold 0: the first of two, and the
        offset before a gap for a time the gap skips)."""
        return wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def _offsets(self, instant: datetime) -> tuple[timedelta, timedelta]:
        """The lowest and highest UTC offsets of the zone within a day of ``instant``."""
        found = [
            (instant + shift).astimezone(self.zone).utcoffset() or timedelta()
            for shift in (-_DAY, timedelta(), _DAY)
        ]
        return min(found), max(found)


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("expected an aware datetime")
    return instant.astimezone(UTC)


def _floor(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


def _ceil(instant: datetime) -> datetime:
    floor = instant.replace(microsecond=0)
    return floor if floor == instant else floor + _SECOND


def _naive(instant: datetime) -> datetime:
    """A UTC instant shifted by an offset, read as a naive wall time."""
    return instant.replace(tzinfo=None)


def _aware(wall: datetime) -> datetime:
    """A naive wall time read as UTC (to subtract an offset from it)."""
    return wall.replace(tzinfo=UTC)
