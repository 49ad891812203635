"""Pure time logic: site-local day windows, finality, lookback and the as-of clock.

Matomo files a visit under the local date (site timezone) of its last action, and a `period=day`
Live query covers local 00:00 .. next local 00:00 (api-reference §0.1, §1.2). All epochs here are
UTC seconds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from extract.errors import ConfigError, ExtractError

# Matomo also accepts manual offsets such as "UTC+5.5" or "UTC-3" besides IANA names.
_MANUAL_OFFSET = re.compile(r"^UTC(?P<sign>[+-])(?P<hours>\d{1,2}(?:\.\d+)?)$")


def parse_as_of(text: str) -> dt.datetime:
    """`--as-of` / EXTRACT_AS_OF: ISO 8601 (naive = UTC) or epoch seconds -> aware UTC time."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise ConfigError(
            f"--as-of {text!r} is not a time: use ISO 8601 (2026-11-22T08:47:00Z) or epoch seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def site_zone(name: str) -> dt.tzinfo:
    """The tzinfo of a Matomo site timezone (IANA name or Matomo's manual `UTC+5.5` form)."""
    if name in ("UTC", "GMT", "UTC+0", "UTC-0"):
        return dt.UTC
    manual = _MANUAL_OFFSET.match(name)
    if manual:
        offset = dt.timedelta(hours=float(manual["hours"]))
        return dt.timezone(offset if manual["sign"] == "+" else -offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExtractError(f"unknown site timezone {name!r} reported by Matomo") from None


def local_midnight(day: dt.date, tz: dt.tzinfo) -> int:
    """Epoch of the first instant of local `day` (a skipped midnight: the transition)."""
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=tz).timestamp())


def local_date(epoch: int, tz: dt.tzinfo) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, tz).date()


@dataclass(frozen=True)
class DayWindow:
    """One (site, local day): visits with start <= lastActionTimestamp <= cutoff belong to it."""

    site_id: int
    day: dt.date
    start: int  # local 00:00 of day, inclusive
    end: int  # local 00:00 of the next day, exclusive (that second belongs to the next day)
    cutoff: (
        int  # last second loaded, inclusive: end - 1 for closed days, as_of - finality otherwise
    )
    closed: bool

    @property
    def status(self) -> str:
        return "complete" if self.closed else "partial"

    def __str__(self) -> str:
        return f"site {self.site_id} {self.day.isoformat()}"


def day_window(
    site_id: int, day: dt.date, tz: dt.tzinfo, as_of: int, finality: int
) -> DayWindow | None:
    """The window for `day` as of `as_of`; None when no visit of that day can be final yet."""
    start = local_midnight(day, tz)
    end = local_midnight(day + dt.timedelta(days=1), tz)
    closed = as_of >= end + finality
    cutoff = end - 1 if closed else min(end - 1, as_of - finality)
    if cutoff < start:
        return None
    return DayWindow(site_id=site_id, day=day, start=start, end=end, cutoff=cutoff, closed=closed)


def _days(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def plan_windows(
    site_id: int,
    tz: dt.tzinfo,
    first_day: dt.date,
    as_of: int,
    finality: int,
    lookback_days: int,
    complete: Collection[dt.date],
) -> list[DayWindow]:
    """Incremental run: every day not yet complete, plus the last `lookback_days` days before today
    (re-fetched so visits that grew or arrived late replace their older copies), oldest first."""
    today = local_date(as_of, tz)
    refetch_from = today - dt.timedelta(days=lookback_days)
    days = (d for d in _days(first_day, today) if d not in complete or d >= refetch_from)
    return [w for d in days if (w := day_window(site_id, d, tz, as_of, finality)) is not None]


def range_windows(
    site_id: int, tz: dt.tzinfo, first: dt.date, last: dt.date, as_of: int, finality: int
) -> list[DayWindow]:
    """Backfill: every day of [first, last] up to today, whatever its state, oldest first."""
    last = min(last, local_date(as_of, tz))
    return [w for d in _days(first, last) if (w := day_window(site_id, d, tz, as_of, finality))]
