"""Live.getLastVisitsDetails as Matomo 5 answers it: date windows, ordering, paging, filters.

Facts: /work/shared/matomo/api-reference.md §1 (plugins/Live/Model.php) and the Matomo 5.0.2
captures. Deliberate differences from real Matomo, all harmless to a correct client:
- multi-day requests are answered in one pass, so the offset bookkeeping bug across Matomo's
  internal time windows (#16394) is not reproduced;
- segments: only `name==value` / `name!=value` on top-level visit fields, joined by `;`.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from extract.demo.dataset import (
    DATE_FORMAT_MESSAGE,
    Dataset,
    DatasetError,
    bad_range_message,
    missing_parameter_message,
    unknown_site_message,
    unsupported_period_message,
)
from extract.demo.generator import local_midnight, zone
from extract.demo.phpjson import php_json

METHOD = "Live.getLastVisitsDetails"
DEFAULT_LIMIT = 100  # [General] API_datatable_default_limit, injected for every HTTP API call
# SitesManager.getDefaultTimezone: Matomo uses it (not each site's zone) for idSite lists/all.
INSTANCE_TIMEZONE = "UTC"
PERIODS = ("day", "week", "month", "year", "range")
_DAY = dt.timedelta(days=1)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_LAST_N = re.compile(r"(last|previous)(\d+)")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2}),(\d{4}-\d{2}-\d{2}|today|now|yesterday)")
_TRUE = ("1", "true")


@dataclass(frozen=True)
class Window:
    """UTC epochs compared with `>=` and `<=` (Matomo's day window includes the next midnight)."""

    start: int
    end: int | None  # None: no upper bound (today quirk, lastN, previousN)


@dataclass(frozen=True)
class Condition:
    field: str
    value: str
    equal: bool

    def matches(self, visit: Mapping[str, Any]) -> bool:
        if self.field not in visit:
            raise DatasetError(f"Segment '{self.field}' is not a supported segment.")
        actual = visit[self.field]
        # Segment values name the stored value (`smartphone`), Live shows labels (`Smartphone`).
        same = str("" if actual is None else actual).lower() == self.value.lower()
        return same == self.equal


@dataclass(frozen=True)
class LiveQuery:
    sites: tuple[int, ...]
    window: Window | None  # None: all history
    min_timestamp: int | None
    limit: int | None  # None: no limit (filter_limit=-1)
    offset: int
    ascending: bool
    fetch_actions: bool
    segment: tuple[Condition, ...]


def parse_query(params: Mapping[str, str], dataset: Dataset, now: int) -> LiveQuery:
    """Validate a request the way Matomo does; raises DatasetError with Matomo's message."""
    sites = _sites(params.get("idSite", ""), dataset.site_ids())
    timezone = dataset.site_timezone(sites[0]) if len(sites) == 1 else INSTANCE_TIMEZONE
    if params.get("flat", "") in _TRUE:
        raise DatasetError(f"The demo server does not implement flat=1 for {METHOD}.")
    limit: int | None = _int(params.get("filter_limit"), DEFAULT_LIMIT)
    offset = max(_int(params.get("filter_offset"), 0), 0)
    deprecated_count = params.get("countVisitorsToFetch", "")
    if deprecated_count:
        # Deprecated parameter: it becomes the limit and resets the offset (API.php:175-181).
        limit, offset = _int(deprecated_count, DEFAULT_LIMIT), 0
    if limit is not None and limit < 0:
        limit = None
    return LiveQuery(
        sites=sites,
        window=live_window(params.get("period", ""), params.get("date", ""), timezone, now),
        min_timestamp=_min_timestamp(params.get("minTimestamp", "")),
        limit=limit,
        offset=offset,
        ascending=params.get("filter_sort_order", "").lower() == "asc",
        fetch_actions=params.get("doNotFetchActions", "").lower() not in _TRUE,
        segment=_segment(params.get("segment", "")),
    )


Row = tuple[int, int, bytes]  # (lastActionTimestamp, idVisit, the visit as PHP-style JSON)


class LiveEndpoint:
    """Answers Live.getLastVisitsDetails from a Dataset.

    Site-days are encoded once per server time and kept (LRU, bounded in bytes): paging through
    a day re-reads it for every page, and a day window also needs the next day (for a visit at
    exactly the next local midnight). A page is then a join of ready-made bytes.
    """

    def __init__(self, dataset: Dataset, cache_bytes: int = 2**30) -> None:
        self._dataset = dataset
        self._cache: OrderedDict[tuple[int, dt.date, int], list[Row]] = OrderedDict()
        self._cache_bytes, self._cached_bytes = cache_bytes, 0
        self._lock = threading.Lock()
        self._day_locks: dict[tuple[int, dt.date, int], threading.Lock] = {}

    def answer(self, params: Mapping[str, str], now: int) -> tuple[bytes, int]:
        """The JSON body and the number of visits in it; raises DatasetError like Matomo."""
        query = parse_query(params, self._dataset, now)
        rows = self._select(query, now)
        bodies = [body for *_, body in rows]
        if not query.fetch_actions:
            bodies = [php_json({**orjson.loads(body), "actionDetails": []}) for body in bodies]
        return b"[" + b",".join(bodies) + b"]", len(bodies)

    def _select(self, query: LiveQuery, now: int) -> list[Row]:
        if query.limit == 0:
            return []
        wanted = None if query.limit is None else query.offset + query.limit
        keep = _filter(query)
        found: list[Row] = []
        if len(query.sites) == 1:
            # Days are disjoint in time, so walking them in output order may stop early.
            site = query.sites[0]
            days = _days(query.window, self._dataset, site, now)
            for day in days if query.ascending else reversed(days):
                found.extend(_ordered(filter(keep, self._rows(site, day, now)), query))
                if wanted is not None and len(found) >= wanted:
                    break
        else:
            found = _ordered(
                (
                    row
                    for site in query.sites
                    for day in _days(query.window, self._dataset, site, now)
                    for row in self._rows(site, day, now)
                    if keep(row)
                ),
                query,
            )
        return found[query.offset : wanted]

    def _rows(self, site: int, day: dt.date, now: int) -> list[Row]:
        key = (site, day, now)
        with self._lock:
            day_lock = self._day_locks.setdefault(key, threading.Lock())
        with day_lock:  # one thread renders a site-day; the others wait for it
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            visits = self._dataset.visits_for_day(site, day, now)
            rows = [(v["lastActionTimestamp"], v["idVisit"], php_json(v)) for v in visits]
            with self._lock:
                self._cache[key] = rows
                self._cached_bytes += _size(rows)
                while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
                    evicted, old = self._cache.popitem(last=False)
                    self._cached_bytes -= _size(old)
                    self._day_locks.pop(evicted, None)
            return rows


def _size(rows: list[Row]) -> int:
    return sum(len(body) + 100 for *_, body in rows)  # + tuple and int overhead, roughly


def live_window(period: str, date: str, timezone: str, now: int) -> Window | None:
    """Model::getStartAndEndDate(): the UTC window for `period`/`date` in the site's zone."""
    if not period or not date:
        return None  # both are needed; otherwise Matomo scans all history
    if period not in PERIODS:
        raise DatasetError(unsupported_period_message(period))
    tz = zone(timezone)
    local_today = local_date(now, tz)
    if period == "range" or "," in date or _LAST_N.fullmatch(date):
        first, last, end_text = _range(date, now)
    else:
        day = _day(date, now)
        if date in ("today", "now") or day == local_today:
            day -= _DAY  # the "today" quirk: Matomo builds the period for the day before
        first, last = _period_bounds(period, day)
        end_text = date
    start = local_midnight(first, tz)
    open_ended = (
        date in ("now", "today", "yesterdaySameTime")
        or "last" in date
        or "previous" in date
        or _day(end_text, now) == local_today
    )
    if open_ended:
        return Window(start, None)
    return Window(start, min(local_midnight(last + _DAY, tz), now + 1))




def local_date(timestamp: int, tz: dt.tzinfo) -> dt.date:
    return dt.datetime.fromtimestamp(timestamp, tz).date()


def _sites(raw: str, known: list[int]) -> tuple[int, ...]:
    """Site::getIdSitesFromIdSitesString(): ints, comma lists or `all`; junk ids are dropped."""
    if not raw:
        raise DatasetError(missing_parameter_message("idSite"))
    if raw.lower() == "all":
        return tuple(sorted(known))
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit() and int(part) > 0 and int(part) not in ids:
            ids.append(int(part))
    if not ids:
        raise DatasetError(unknown_site_message(raw))
    for site in ids:
        if site not in known:
            raise DatasetError(unknown_site_message(str(site)))
    return tuple(ids)


def _int(raw: str | None, default: int) -> int:
    # Common::getRequestVar with an int default: non-numeric input falls back to the default.
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def _min_timestamp(raw: str) -> int | None:
    try:
        return int(float(raw)) if raw else None
    except ValueError:
        return None  # Matomo ignores a non-numeric minTimestamp


def _segment(raw: str) -> tuple[Condition, ...]:
    conditions: list[Condition] = []
    for part in filter(None, raw.split(";")):
        match = re.fullmatch(r"([A-Za-z0-9_.]+)(==|!=)(.*)", part)
        if match is None or "," in part:
            raise DatasetError(
                f"The demo server only understands segments like name==value;name!=value: '{raw}'"
            )
        conditions.append(Condition(match[1], unquote(match[3]), match[2] == "=="))
    return tuple(conditions)


def _day(text: str, now: int) -> dt.date:
    """Date::factory(): keywords are resolved in UTC, like PHP running in UTC."""
    utc_today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    keywords = {"today": utc_today, "now": utc_today, "yesterday": utc_today - _DAY}
    if text in keywords:
        return keywords[text]
    if text == "yesterdaySameTime":
        return dt.datetime.fromtimestamp(now - 86400, dt.UTC).date()
    if _ISO_DAY.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise DatasetError(DATE_FORMAT_MESSAGE)


def _range(date: str, now: int) -> tuple[dt.date, dt.date, str]:
    """new Range('range', $date): always days, even for period=week&date=last4."""
    last_n = _LAST_N.fullmatch(date)
    if last_n:
        count = max(int(last_n[2]), 1)
        end = _day("today", now) - (_DAY if last_n[1] == "previous" else dt.timedelta())
        return end - (count - 1) * _DAY, end, date
    explicit = _RANGE.fullmatch(date)
    if explicit is None:
        raise DatasetError(bad_range_message(date))
    return _day(explicit[1], now), _day(explicit[2], now), explicit[2]


def _period_bounds(period: str, day: dt.date) -> tuple[dt.date, dt.date]:
    if period == "week":
        monday = day - day.weekday() * _DAY
        return monday, monday + 6 * _DAY
    if period == "month":
        following = (day.replace(day=1) + 32 * _DAY).replace(day=1)
        return day.replace(day=1), following - _DAY
    if period == "year":
        return dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)
    return day, day


def _days(window: Window | None, dataset: Dataset, site: int, now: int) -> list[dt.date]:
    """The site-local days whose visits can fall in `window`."""
    tz = zone(dataset.site_timezone(site))
    first = dataset.first_day() if window is None else local_date(window.start, tz)
    last = local_date(now if window is None or window.end is None else window.end, tz)
    return [first + n * _DAY for n in range((last - first).days + 1)]


def _filter(query: LiveQuery) -> Callable[[Row], bool]:
    start = query.window.start if query.window else None
    end = query.window.end if query.window else None
    floor = query.min_timestamp
    conditions = query.segment

    def keep(row: Row) -> bool:
        ts = row[0]
        if (
            (start is not None and ts < start)
            or (end is not None and ts > end)
            or (floor is not None and ts <= floor)  # minTimestamp is strict
        ):
            return False
        if not conditions:
            return True
        visit = orjson.loads(row[2])
        return all(c.matches(visit) for c in conditions)

    return keep


def _ordered(rows: Iterable[Row], query: LiveQuery) -> list[Row]:
    # Matomo 5.0.2 orders by visit_last_action_time only; the captures show visits sharing a
    # second in ascending idVisit order in both directions, so that is the tie-break here.
    if query.ascending:
        return sorted(rows, key=lambda row: (row[0], row[1]))
    return sorted(rows, key=lambda row: (-row[0], row[1]))
