"""Cron evaluation on a time zone's wall clock: daylight saving, seconds, nicknames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.scheduling import Cron, CronError, java_iso


def after(cron: Cron, start: datetime, count: int) -> list[str]:
    return [java_iso(cron.local(d)) for d in islice(cron.iter_after(start), count)]


def before(cron: Cron, start: datetime, count: int) -> list[str]:
    return [java_iso(cron.local(d)) for d in islice(cron.iter_before(start), count)]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_every_minute_in_utc() -> None:
    cron = Cron("* * * * *")
    assert after(cron, utc(2026, 1, 1), 3) == [
        "2026-01-01T00:01:00Z",
        "2026-01-01T00:02:00Z",
        "2026-01-01T00:03:00Z",
    ]


def test_next_is_strictly_after_and_previous_strictly_before() -> None:
    cron = Cron("0 * * * *")
    assert cron.next_after(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 6)
    assert cron.previous_before(utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 4)
    # A fraction of a second past a date: that date is before, not after.
    assert cron.next_after(utc(2026, 1, 1, 5) + timedelta(microseconds=1)) == utc(2026, 1, 1, 6)
    assert cron.previous_before(utc(2026, 1, 1, 5) + timedelta(microseconds=1)) == utc(
        2026, 1, 1, 5
    )


def test_seconds_come_first_with_seconds() -> None:
    cron = Cron("*/20 30 * * * *", with_seconds=True)
    assert after(cron, utc(2026, 1, 1), 4) == [
        "2026-01-01T00:30:00Z",
        "2026-01-01T00:30:20Z",
        "2026-01-01T00:30:40Z",
        "2026-01-01T01:30:00Z",
    ]


@pytest.mark.parametrize(
    ("nickname", "expected"),
    [
        ("@hourly", "2026-01-01T01:00:00Z"),
        ("@daily", "2026-01-02T00:00:00Z"),
        ("@midnight", "2026-01-02T00:00:00Z"),
        ("@weekly", "2026-01-04T00:00:00Z"),  # the first Sunday
        ("@monthly", "2026-02-01T00:00:00Z"),
        ("@yearly", "2027-01-01T00:00:00Z"),
        ("@annually", "2027-01-01T00:00:00Z"),
    ],
)
def test_nicknames(nickname: str, expected: str) -> None:
    assert after(Cron(nickname), utc(2026, 1, 1), 1) == [expected]


def test_day_of_week_seven_is_sunday_and_names_work() -> None:
    assert after(Cron("0 0 * * 7"), utc(2026, 1, 1), 1) == ["2026-01-04T00:00:00Z"]
    assert after(Cron("0 0 * * MON-FRI"), utc(2026, 1, 2, 12), 2) == [
        "2026-01-05T00:00:00Z",
        "2026-01-06T00:00:00Z",
    ]


def test_wall_clock_times_in_the_zone() -> None:
    cron = Cron("0 9 * * *", "Asia/Tokyo")
    assert after(cron, utc(2025, 12, 31, 12), 2) == [
        "2026-01-01T09:00:00+09:00",
        "2026-01-02T09:00:00+09:00",
    ]
    assert cron.next_after(utc(2025, 12, 31, 12)) == utc(2026, 1, 1, 0)


# -- daylight saving: Europe/Paris springs forward on 2026-03-29 at 02:00 (to 03:00) and
# falls back on 2026-10-25 at 03:00 (to 02:00); America/New_York on 2026-03-08 and 11-01.


def test_a_skipped_wall_time_fires_once_shifted_forward() -> None:
    cron = Cron("30 2 * * *", "Europe/Paris")
    dates = list(islice(cron.iter_after(utc(2026, 3, 27)), 4))
    assert [java_iso(cron.local(d)) for d in dates] == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",  # 02:30 does not exist: one hour later, as Java does
        "2026-03-30T02:30:00+02:00",
    ]
    assert dates[2] == utc(2026, 3, 29, 1, 30)


def test_a_skipped_hour_does_not_fire_twice_the_dates_it_maps_onto() -> None:
    cron = Cron("*/15 * * * *", "Europe/Paris")
    assert after(cron, utc(2026, 3, 29, 0, 30), 6) == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00, 02:15... map onto 03:00, 03:15...: once each
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T03:45:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_a_skipped_time_that_only_the_gap_produces_is_not_lost() -> None:
    # 02:45 on the spring-forward night maps to 03:45 CEST, after 02:15's 03:15 CEST:
    # starting from 03:15 CEST, 03:45 must still come.
    cron = Cron("15,45 2 * * *", "Europe/Paris")
    assert after(cron, utc(2026, 3, 29, 1, 15), 2) == [
        "2026-03-29T03:45:00+02:00",
        "2026-03-30T02:15:00+02:00",
    ]


def test_a_repeated_wall_time_fires_once_at_its_first_occurrence() -> None:
    cron = Cron("30 2 * * *", "Europe/Paris")
    dates = list(islice(cron.iter_after(utc(2026, 10, 24, 12)), 2))
    assert [java_iso(cron.local(d)) for d in dates] == [
        "2026-10-25T02:30:00+02:00",  # the first 02:30 (CEST), not the second (CET)
        "2026-10-26T02:30:00+01:00",
    ]
    assert dates[0] == utc(2026, 10, 25, 0, 30)


def test_a_repeated_hour_fires_each_wall_time_once() -> None:
    cron = Cron("*/30 * * * *", "America/New_York")
    assert after(cron, utc(2026, 11, 1, 4, 45), 5) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T02:00:00-05:00",  # 01:00 and 01:30 EST come again: not fired again
        "2026-11-01T02:30:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]


def test_starting_inside_the_repeated_hour_skips_its_first_pass() -> None:
    # 06:15Z is 01:15 EST, the second pass: 01:30 EDT has passed, the next is 02:00 EST.
    cron = Cron("*/30 * * * *", "America/New_York")
    assert after(cron, utc(2026, 11, 1, 6, 15), 1) == ["2026-11-01T02:00:00-05:00"]


def test_backwards_across_daylight_saving_mirrors_forwards() -> None:
    cron = Cron("*/15 * * * *", "Europe/Paris")
    assert before(cron, utc(2026, 3, 29, 1, 20), 4) == [
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T01:30:00+01:00",
    ]
    assert before(Cron("30 2 * * *", "Europe/Paris"), utc(2026, 10, 27), 2) == [
        "2026-10-26T02:30:00+01:00",
        "2026-10-25T02:30:00+02:00",
    ]


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from(
        ["*/15 * * * *", "30 2 * * *", "0,30 1-3 * * *", "15,45 2 * * *", "@hourly", "0 0 * * 0"]
    ),
    zone=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
)
def test_dates_strictly_increase_and_backwards_gives_the_same_dates(
    expression: str, zone: str, start: datetime
) -> None:
    cron = Cron(expression, zone)
    first = start.replace(tzinfo=UTC)
    forward = list(islice(cron.iter_after(first), 12))
    assert all(d.utcoffset() == timedelta() for d in forward)  # UTC: safe to compare
    assert all(a < b for a, b in pairwise(forward))
    assert forward[0] > first
    backward = list(islice(cron.iter_before(forward[-1] + timedelta(seconds=1)), 12))
    assert backward[::-1] == forward


@pytest.mark.parametrize(
    ("expression", "zone", "with_seconds", "message"),
    [
        ("* * *", "UTC", False, "expected 5 fields, found 3"),
        ("0 0 * * * *", "UTC", False, "expected 5 fields, found 6 (or set withSeconds: true)"),
        ("0 0 * * *", "UTC", True, "expected 6 fields (seconds first), found 5"),
        ("61 * * * *", "UTC", False, "a field is out of range or malformed"),
        ("0 0 30 2 *", "UTC", False, "never matches a date"),
        ("@often", "UTC", False, "expected 5 fields, found 1"),
        ("0 0 * * *", "Mars/Olympus", False, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_invalid_expressions_and_zones_are_refused(
    expression: str, zone: str, with_seconds: bool, message: str
) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Cron(expression, zone, with_seconds=with_seconds)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Cron("* * * * *").next_after(datetime(2026, 1, 1))
