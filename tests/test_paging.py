"""Keyset paging inside one day window: ties, growth and arrivals between requests, cutoffs.

A small in-process model of Matomo's Live query (ascending by last action then idVisit,
`minTimestamp` strict, the day's upper bound inclusive) lets each test change the data between two
page requests exactly where it hurts. End-to-end runs against the demo server: test_extract_run.py.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

import pytest

from extract.errors import ExtractError
from extract.paging import iter_window_pages
from extract.visits import visit_keys
from extract.windows import DayWindow

START = 1_793_836_800  # 2026-11-05 00:00 UTC
END = START + 86_400
CLOSED = DayWindow(
    site_id=1, day=dt.date(2026, 11, 5), start=START, end=END, cutoff=END - 1, closed=True
)


class FakeLive:
    """Visits of one site-day as Matomo's SQL sees them; `between` runs before every request."""

    def __init__(self, visits: dict[int, int]) -> None:
        self.visits = dict(visits)  # idVisit -> lastActionTimestamp
        self.requests: list[tuple[int, int]] = []
        self.between: Callable[[FakeLive], None] = lambda live: None

    def ordered(self) -> list[tuple[int, int]]:
        return sorted((ts, vid) for vid, ts in self.visits.items() if START <= ts <= END)

    def fetch(self, min_timestamp: int, limit: int) -> list[tuple[int, int]]:
        self.between(self)
        self.requests.append((min_timestamp, limit))
        rows = [(ts, vid) for ts, vid in self.ordered() if ts > min_timestamp][:limit]
        return [(vid, ts) for ts, vid in rows]

    def fetch_offset(self, offset: int, limit: int) -> list[tuple[int, int]]:
        self.between(self)
        self.requests.append((offset, limit))
        return [(vid, ts) for ts, vid in self.ordered()[offset : offset + limit]]


def keyset(live: FakeLive, window: DayWindow = CLOSED, page_size: int = 3) -> list[tuple[int, int]]:
    return [row for page in iter_window_pages(live.fetch, window, page_size) for row in page]


def offset_paging(live: FakeLive, page_size: int = 3) -> list[tuple[int, int]]:
    """What the peers do (api-reference §7.2): filter_offset += page size until a short page."""
    seen: list[tuple[int, int]] = []
    offset = 0
    while True:
        page = live.fetch_offset(offset, page_size)
        seen += page
        if len(page) < page_size:
            return seen
        offset += page_size


def newest(pairs: list[tuple[int, int]]) -> dict[int, int]:
    result: dict[int, int] = {}
    for vid, ts in pairs:
        result[vid] = max(ts, result.get(vid, ts))
    return result


def test_every_visit_once_in_order() -> None:
    live = FakeLive({vid: START + 60 * vid for vid in range(1, 11)})
    assert keyset(live) == [(vid, START + 60 * vid) for vid in range(1, 11)]
    # The cursor is the last second - 1, so each page starts with the previous page's last visit
    # (skipped): 1-3, 3-5, 5-7, 7-9, then 9-10 is short and ends the window.
    assert [limit for _, limit in live.requests] == [3, 3, 3, 3, 3]
    assert live.requests[0][0] == START - 1
    assert live.requests[1][0] == START + 180 - 1


def test_exact_multiple_ends_on_an_empty_page() -> None:
    live = FakeLive({vid: START + vid for vid in range(1, 7)})
    assert len(keyset(live)) == 6
    assert len(live.requests) == 3  # 3, 3, then []


def test_ties_across_a_page_boundary_are_neither_lost_nor_doubled() -> None:
    # Five visits share one second and straddle the first page boundary.
    live = FakeLive(
        {
            1: START + 10,
            2: START + 20,
            3: START + 20,
            4: START + 20,
            5: START + 20,
            6: START + 20,
            7: START + 30,
        }
    )
    got = keyset(live)
    assert sorted(vid for vid, _ in got) == [1, 2, 3, 4, 5, 6, 7]
    assert len(got) == 7


def test_a_full_page_of_one_second_doubles_the_page_size() -> None:
    live = FakeLive({vid: START + 5 for vid in range(1, 11)} | {11: START + 6})
    got = keyset(live, page_size=2)
    assert sorted(vid for vid, _ in got) == list(range(1, 12))
    limits = [limit for _, limit in live.requests]
    assert limits[:4] == [2, 4, 8, 16]  # doubled until the second is exhausted


def test_midnight_of_the_next_day_belongs_to_the_next_day() -> None:
    # Matomo's day query includes next-day 00:00:00 (api-reference §1.2); that visit is the 6th's.
    live = FakeLive({1: START, 2: END - 1, 3: END})
    assert keyset(live) == [(1, START), (2, END - 1)]


def test_open_day_stops_at_the_cutoff() -> None:
    window = DayWindow(1, CLOSED.day, START, END, cutoff=START + 1000, closed=False)
    live = FakeLive({vid: START + 100 * vid for vid in range(1, 30)})
    assert [vid for vid, _ in keyset(live, window)] == list(range(1, 11))
    assert len(live.requests) == 5  # stopped at the first visit past the cutoff, not the day's end


def grow_one_visit_per_request(live: FakeLive) -> None:
    """An in-progress visit gets a new action: it moves to 'now', the end of the list."""
    now = max(live.visits.values()) + 1
    victim = min(live.visits, key=lambda vid: live.visits[vid]) if live.requests else None
    if victim is not None and len(live.requests) in (1, 2):
        live.visits[victim] = now


def test_growth_between_requests_keyset_keeps_everything_offset_loses_visits() -> None:
    truth_ids = set(range(1, 13))

    keyset_live = FakeLive({vid: START + 60 * vid for vid in truth_ids})
    keyset_live.between = grow_one_visit_per_request
    got = keyset(keyset_live)
    assert set(newest(got)) == truth_ids
    assert newest(got) == keyset_live.visits  # the newest copy of each visit was seen

    offset_live = FakeLive({vid: START + 60 * vid for vid in truth_ids})
    offset_live.between = grow_one_visit_per_request
    got_offset = offset_paging(offset_live)
    # Each visit that moves from before the offset to the end shifts the list left: one skipped.
    assert set(newest(got_offset)) != truth_ids
    assert len(truth_ids - set(newest(got_offset))) == 2


def test_arrivals_between_requests_are_picked_up() -> None:
    live = FakeLive({vid: START + 60 * vid for vid in range(1, 8)})
    next_id = iter(range(100, 200))

    def arrive(live: FakeLive) -> None:
        if len(live.requests) in (1, 3):
            live.visits[next(next_id)] = max(live.visits.values()) + 1

    live.between = arrive
    got = newest(keyset(live))
    assert got == live.visits
    assert len(got) == 9


def test_randomised_growth_ties_and_arrivals() -> None:
    """Whatever happens between requests, every visit is met at its final last-action second and
    no (visit, second) pair is ever yielded twice."""
    for seed in range(200):
        rng = random.Random(seed)
        base = {vid: START + rng.randrange(0, 50) for vid in range(1, rng.randrange(2, 40))}
        live = FakeLive(base)
        clock = [START + 60]

        def churn(live: FakeLive, rng: random.Random = rng, clock: list[int] = clock) -> None:
            if len(live.requests) > 12:
                return  # the past stops changing (a closed day); paging must then finish
            for _ in range(rng.randrange(0, 3)):
                clock[0] += rng.randrange(0, 2)  # 0: another visit at the same second (a tie)
                if rng.random() < 0.5:
                    live.visits[rng.choice(list(live.visits))] = clock[0]
                else:
                    live.visits[max(live.visits) + 1] = clock[0]

        live.between = churn
        pairs = keyset(live, page_size=rng.randrange(1, 6))
        assert len(pairs) == len(set(pairs)), seed
        assert newest(pairs) == live.visits, seed


def test_visits_out_of_order_are_refused() -> None:
    def fetch(min_timestamp: int, limit: int) -> list[tuple[int, int]]:
        return [(2, START + 9), (1, START + 5)]

    with pytest.raises(ExtractError, match="out of last-action order"):
        list(iter_window_pages(fetch, CLOSED, 10))


@pytest.mark.parametrize(
    ("visit", "keys"),
    [
        ({"idVisit": 7, "lastActionTimestamp": 99, "actionDetails": [{}, {}]}, (7, 99, 2, -1)),
        # PHP < 8.1 sends every number as a string
        ({"idVisit": "7", "lastActionTimestamp": "99", "actionDetails": []}, (7, 99, 0, -1)),
        (
            {
                "idVisit": 7,
                "lastActionTimestamp": 99,
                "actionDetails": [{}] * 3,
                "truncatedActionsCount": 12,
            },
            (7, 99, 3, 12),
        ),
    ],
)
def test_visit_keys(visit: dict[str, Any], keys: tuple[int, int, int, int]) -> None:
    assert visit_keys(visit) == keys


@pytest.mark.parametrize("visit", [{"idVisit": 7}, {"lastActionTimestamp": 1}, [1, 2], "x"])
def test_visit_without_keys_is_a_clear_error(visit: Any) -> None:
    with pytest.raises(ExtractError, match="without a usable idVisit/lastActionTimestamp"):
        visit_keys(visit)
