"""Keyset paging of Live.getLastVisitsDetails inside one day window.

Offset paging over a list that moves (visits arriving, in-progress visits growing and moving later)
skips or repeats visits. Instead each request asks, in ascending last-action order, for visits
strictly after a cursor second (`minTimestamp`), and the cursor is the last seen second minus one,
so visits sharing that second are asked for again and the ones already seen are skipped. A visit
that grows between two requests moves to a later second and is simply met again there; the landing
keeps its newest copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from extract.errors import ExtractError
from extract.windows import DayWindow

# (idVisit, lastActionTimestamp) of one visit, in the order Matomo sent it.
Row = tuple[int, int]
# fetch(min_timestamp, limit) -> rows with lastActionTimestamp > min_timestamp, oldest first.
FetchPage = Callable[[int, int], list[Row]]


def iter_window_pages(fetch: FetchPage, window: DayWindow, page_size: int) -> Iterator[list[Row]]:
    """Yield, page by page, the visits of `window` not yielded before (a grown visit comes again).

    Stops on a short page (including `[]`) or at the first visit past the window's cutoff. A full
    page whose visits all share one second doubles the next page size, so the cursor always
    advances.
    """
    cursor = window.start - 1  # minTimestamp is strict: this asks for the window's first second on
    limit = page_size
    boundary_second = -1
    boundary_ids: set[int] = set()
    while True:
        page = fetch(cursor, limit)
        kept: list[Row] = []
        previous = cursor
        past_cutoff = False
        for visit_id, second in page:
            if second < previous:
                raise ExtractError(
                    f"{window}: Matomo returned visits out of last-action order; keyset paging "
                    "needs filter_sort_order=asc to be honoured"
                )
            previous = second
            if second > window.cutoff:
                past_cutoff = True
                break
            if second == boundary_second and visit_id in boundary_ids:
                continue
            kept.append((visit_id, second))
        yield kept
        if past_cutoff or len(page) < limit:
            return
        last_second = page[-1][1]
        at_last = {visit_id for visit_id, second in page if second == last_second}
        boundary_ids = boundary_ids | at_last if last_second == boundary_second else at_last
        boundary_second = last_second
        limit = limit * 2 if page[0][1] == last_second else page_size
        cursor = last_second - 1
