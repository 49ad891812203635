"""Site-local day windows, finality, lookback and the as-of clock (pure functions)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from extract.errors import ConfigError, ExtractError
from extract.windows import (
    day_window,
    local_date,
    local_midnight,
    parse_as_of,
    plan_windows,
    range_windows,
    site_zone,
)

FINALITY = 40 * 60
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T08:47:00Z", "2026-11-22T08:47:00+00:00"),
        ("2026-11-22T09:47:00+01:00", "2026-11-22T08:47:00+00:00"),
        ("2026-11-22T08:47:00", "2026-11-22T08:47:00+00:00"),  # naive means UTC
        ("1795337220", "2026-11-22T08:47:00+00:00"),
        (" 1795337220.0 ", "2026-11-22T08:47:00+00:00"),
    ],
)
def test_parse_as_of(text: str, expected: str) -> None:
    assert parse_as_of(text) == dt.datetime.fromisoformat(expected)
    assert parse_as_of(text).tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "12:00"])
def test_parse_as_of_rejects_garbage(text: str) -> None:
    with pytest.raises(ConfigError, match="--as-of"):
        parse_as_of(text)


@pytest.mark.parametrize(
    ("name", "offset_hours"),
    [("UTC", 0), ("UTC+5.5", 5.5), ("UTC-3", -3), ("UTC+14", 14), ("UTC-12", -12)],
)
def test_manual_offsets(name: str, offset_hours: float) -> None:
    zone = site_zone(name)
    assert zone.utcoffset(dt.datetime(2026, 6, 1)) == dt.timedelta(hours=offset_hours)


def test_unknown_zone_is_a_clear_error() -> None:
    with pytest.raises(ExtractError, match="Mars/Olympus"):
        site_zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", "2026-11-01", 25),  # fall back: the captured 25-hour Blog day
        ("America/New_York", "2026-03-08", 23),  # spring forward
        ("Europe/Berlin", "2026-03-29", 23),
        ("Europe/Berlin", "2026-10-25", 25),
        ("Asia/Kolkata", "2026-11-01", 24),
        ("UTC", "2026-11-01", 24),
    ],
)
def test_dst_days_have_their_real_length(zone: str, day: str, hours: int) -> None:
    tz = site_zone(zone)
    date = dt.date.fromisoformat(day)
    window = day_window(1, date, tz, as_of=epoch("2027-01-01T00:00:00+00:00"), finality=FINALITY)
    assert window is not None
    assert window.end - window.start == hours * 3600
    assert window.cutoff == window.end - 1
    assert window.closed


def test_new_york_fall_back_day_matches_the_capture() -> None:
    # Local 2026-11-01 00:00 EDT = 04:00 UTC; 2026-11-02 00:00 EST = 05:00 UTC.
    window = day_window(2, dt.date(2026, 11, 1), NEW_YORK, epoch("2026-11-22T08:47:00+00:00"), 0)
    assert window is not None
    assert window.start == epoch("2026-11-01T04:00:00+00:00")
    assert window.end == epoch("2026-11-02T05:00:00+00:00")


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/Berlin",
        "Pacific/Kiritimati",  # UTC+14
        "Etc/GMT+12",  # UTC-12
        "Asia/Kathmandu",  # +05:45
        "America/Havana",  # DST switches at midnight: a local day starts at 01:00
        "Asia/Beirut",  # midnight switches too
        "Australia/Lord_Howe",  # half-hour DST
    ],
)
def test_windows_tile_the_timeline(zone: str) -> None:
    """Every second belongs to exactly one local day, across a whole year of DST changes."""
    tz = site_zone(zone)
    day = dt.date(2026, 1, 1)
    while day < dt.date(2027, 1, 1):
        start, end = local_midnight(day, tz), local_midnight(day + dt.timedelta(days=1), tz)
        assert local_date(start, tz) == day
        assert local_date(end - 1, tz) == day
        assert local_date(end, tz) == day + dt.timedelta(days=1)
        assert 22 * 3600 <= end - start <= 26 * 3600
        day += dt.timedelta(days=1)


def test_far_east_and_far_west_sites_disagree_on_today() -> None:
    as_of = epoch("2026-11-22T08:47:00+00:00")
    assert local_date(as_of, site_zone("Pacific/Kiritimati")) == dt.date(2026, 11, 22)
    assert local_date(as_of, site_zone("Etc/GMT+12")) == dt.date(2026, 11, 21)
    assert local_date(as_of, site_zone("UTC+14")) == dt.date(2026, 11, 22)


def test_open_day_is_loaded_up_to_the_finality_cutoff() -> None:
    as_of = epoch("2026-11-22T15:00:00+01:00")  # Berlin afternoon
    window = day_window(3, dt.date(2026, 11, 22), BERLIN, as_of, FINALITY)
    assert window is not None
    assert not window.closed
    assert window.status == "partial"
    assert window.cutoff == as_of - FINALITY
    assert window.start == epoch("2026-11-22T00:00:00+01:00")


@pytest.mark.parametrize(
    ("offset", "closed"),
    [(FINALITY - 1, False), (FINALITY, True), (FINALITY + 1, True)],
)
def test_day_closes_exactly_at_end_plus_finality(offset: int, closed: bool) -> None:
    end = epoch("2026-11-22T00:00:00+01:00")
    window = day_window(3, dt.date(2026, 11, 21), BERLIN, end + offset, FINALITY)
    assert window is not None
    assert window.closed is closed
    assert window.cutoff == end - 1  # even while still open, the whole day is already final


def test_nothing_final_yet_means_no_window() -> None:
    midnight = epoch("2026-11-22T00:00:00+01:00")
    assert day_window(3, dt.date(2026, 11, 22), BERLIN, midnight + FINALITY - 1, FINALITY) is None
    window = day_window(3, dt.date(2026, 11, 22), BERLIN, midnight + FINALITY, FINALITY)
    assert window is not None
    assert window.cutoff == window.start  # the first second of the day is final now


def test_as_of_exactly_at_local_midnight_with_zero_finality() -> None:
    midnight = epoch("2026-11-22T00:00:00+14:00")
    tz = site_zone("Pacific/Kiritimati")
    today = day_window(1, dt.date(2026, 11, 22), tz, midnight, 0)
    yesterday = day_window(1, dt.date(2026, 11, 21), tz, midnight, 0)
    assert today is not None
    assert today.cutoff == today.start
    assert not today.closed
    assert yesterday is not None
    assert yesterday.closed


def test_plan_first_run_loads_every_day_oldest_first() -> None:
    as_of = epoch("2026-11-22T08:47:00+00:00")
    windows = plan_windows(2, NEW_YORK, dt.date(2026, 11, 1), as_of, FINALITY, 3, complete=set())
    days = [window.day for window in windows]
    # New York is at 03:47 on the 22nd: 21 closed days plus the open 22nd.
    assert days == [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(22)]
    assert [window.status for window in windows].count("partial") == 1
    assert windows[-1].status == "partial"


def test_plan_skips_complete_days_but_refetches_the_lookback() -> None:
    as_of = epoch("2026-11-22T08:47:00+00:00")
    complete = {dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(21)}
    windows = plan_windows(1, dt.UTC, dt.date(2026, 11, 1), as_of, FINALITY, 3, complete)
    assert [window.day.day for window in windows] == [19, 20, 21, 22]
    no_lookback = plan_windows(1, dt.UTC, dt.date(2026, 11, 1), as_of, FINALITY, 0, complete)
    assert [window.day.day for window in no_lookback] == [22]


def test_plan_with_a_gap_fetches_the_gap() -> None:
    as_of = epoch("2026-11-22T08:47:00+00:00")
    complete = {dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(21)} - {
        dt.date(2026, 11, 5)
    }
    windows = plan_windows(1, dt.UTC, dt.date(2026, 11, 1), as_of, FINALITY, 1, complete)
    assert [window.day.day for window in windows] == [5, 21, 22]


def test_plan_start_in_the_future_is_empty() -> None:
    as_of = epoch("2026-11-22T08:47:00+00:00")
    assert plan_windows(1, dt.UTC, dt.date(2026, 12, 1), as_of, FINALITY, 3, set()) == []


def test_range_windows_are_clipped_to_today_and_ignore_state() -> None:
    as_of = epoch("2026-11-22T08:47:00+00:00")
    windows = range_windows(1, dt.UTC, dt.date(2026, 11, 20), dt.date(2026, 12, 31), as_of, 0)
    assert [(window.day.day, window.status) for window in windows] == [
        (20, "complete"),
        (21, "complete"),
        (22, "partial"),
    ]
