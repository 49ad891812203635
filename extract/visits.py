"""Visits per (site, day) window: Live pages -> spooled page files -> one commit + checkpoint.

Windows are fetched concurrently by a small thread pool (the shared limiter caps what reaches
Matomo); a single writer, the calling thread, commits each window as soon as it is fetched. Memory
holds at most one response body per worker and two decoded pages; the spool (on disk) at most a few
windows.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from extract.client import MatomoClient
from extract.errors import ExtractError, Interrupted
from extract.paging import Row, iter_window_pages
from extract.state import NO_TRUNCATION, VisitKeys, WindowCommit
from extract.warehouse import Warehouse
from extract.windows import DayWindow

log = logging.getLogger(__name__)

LIVE_METHOD = "Live.getLastVisitsDetails"
# Decoding holds the GIL, so a second page decoded at once gains nothing but its memory.
PAGES_DECODED_AT_ONCE = 1
_POLL_SECONDS = 0.2


class ProgressSink(Protocol):
    def visits_fetched(self, window: DayWindow, count: int) -> None: ...

    def window_committed(self, window: DayWindow) -> None: ...


@dataclass
class LoadTotals:
    windows: int = 0
    visits: int = 0  # distinct visits landed (summed over windows)
    pages: int = 0
    warnings: int = 0


def window_spool(spool_dir: Path, window: DayWindow) -> Path:
    return spool_dir / f"site{window.site_id}_{window.day.isoformat()}"


def visit_keys(visit: Any) -> tuple[int, int, int, int]:
    """(idVisit, lastActionTimestamp, actions delivered, truncatedActionsCount) of one visit.

    Matomo may send numbers as strings (PHP < 8.1), hence int() on each.
    """
    try:
        visit_id = int(visit["idVisit"])
        last_action = int(visit["lastActionTimestamp"])
    except (KeyError, TypeError, ValueError):
        shown = visit.get("idVisit") if isinstance(visit, dict) else visit
        raise ExtractError(
            f"Matomo sent a visit without a usable idVisit/lastActionTimestamp ({shown!r:.80})"
        ) from None
    actions = visit.get("actionDetails")
    truncated = str(visit.get("truncatedActionsCount") or "")
    return (
        visit_id,
        last_action,
        len(actions) if isinstance(actions, list) else 0,
        int(truncated) if truncated.isdigit() else NO_TRUNCATION,
    )


def fetch_window(
    client: MatomoClient,
    window: DayWindow,
    spool_dir: Path,
    page_size: int,
    run_id: str,
    progress: ProgressSink,
    decoding: threading.Semaphore,
) -> WindowCommit:
    """Page through one window; each response body goes to its own page file, untouched.

    `decoding` bounds how many pages are decoded at once across workers: a decoded page is ~3x
    its JSON size in Python objects, and only its keys outlive this function.
    """
    directory = window_spool(spool_dir, window)
    directory.mkdir(parents=True, exist_ok=True)
    extracted_at = dt.datetime.now(dt.UTC)
    files: list[Path] = []
    keys = VisitKeys()
    truncated: set[int] = set()

    def rows_of(page: list[Any]) -> list[Row]:
        rows: list[Row] = []
        for visit in page:
            visit_id, last_action, actions, cut = visit_keys(visit)
            keys.append(visit_id, last_action, actions, cut)
            rows.append((visit_id, last_action))
            if cut != NO_TRUNCATION and window.start <= last_action <= window.cutoff:
                truncated.add(visit_id)
        return rows

    def parse(body: bytes) -> list[Row]:
        with decoding:
            rows = rows_of(orjson.loads(body))  # the decoded page is freed right here
        if rows:
            path = directory / f"{len(files) + 1:06d}.json"
            path.write_bytes(body)
            files.append(path)
        return rows

    def fetch(min_timestamp: int, limit: int) -> list[Row]:
        params: dict[str, str | int] = {
            "idSite": window.site_id,
            "period": "day",
            "date": window.day.isoformat(),
            "filter_sort_order": "asc",
            "minTimestamp": min_timestamp,
            "filter_limit": limit,
        }
        return client.call_array(LIVE_METHOD, params, parse, what=str(window))

    pages = 0
    for kept in iter_window_pages(fetch, window, page_size):
        pages += 1
        progress.visits_fetched(window, len(kept))
    if truncated:
        log.warning(
            "%s: Matomo cut the actionDetails of %d visit(s) (its "
            "visitor_log_maximum_actions_per_visit); their rows keep what was sent and "
            "truncated_actions_count says how many actions are missing",
            window,
            len(truncated),
        )
    return WindowCommit(
        site_id=window.site_id,
        day=window.day,
        status=window.status,
        start=window.start,
        cutoff=window.cutoff,
        files=tuple(files),
        keys=keys,
        pages=pages,
        warnings=len(truncated),
        run_id=run_id,
        extracted_at=extracted_at,
    )


def load_windows(
    client: MatomoClient,
    warehouse: Warehouse,
    windows: Iterable[DayWindow],
    *,
    concurrency: int,
    page_size: int,
    run_id: str,
    progress: ProgressSink,
    totals: LoadTotals,
) -> None:
    """Fetch windows concurrently; commit each one (in completion order) as soon as it is fetched,
    adding it to `totals` (which therefore also counts what a failed run did commit).

    On any error the other workers are cancelled; windows already committed stay committed, so the
    next run resumes after them.
    """
    queue: Iterator[DayWindow] = iter(windows)
    spool = warehouse.spool_root
    # Twice the worker count queued: a worker always has a next window while the writer commits.
    ahead = 2 * concurrency
    decoding = threading.BoundedSemaphore(PAGES_DECODED_AT_ONCE)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="window")
    in_flight: dict[Future[WindowCommit], DayWindow] = {}

    def submit_next() -> None:
        window = next(queue, None)
        if window is not None:
            future = pool.submit(
                fetch_window, client, window, spool, page_size, run_id, progress, decoding
            )
            in_flight[future] = window

    try:
        for _ in range(ahead):
            submit_next()
        while in_flight:
            # A timeout, so that a stop request (Ctrl-C, SIGTERM) is seen within a moment.
            done, _ = wait(in_flight, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            _stop_if_asked(client)
            for future in done:
                window = in_flight.pop(future)
                commit = future.result()
                started = time.monotonic()
                landed = warehouse.commit_window(commit)
                shutil.rmtree(window_spool(spool, window), ignore_errors=True)
                log.info(
                    "%s: %d visits in %d page(s), %s, committed in %.2f s",
                    window,
                    landed,
                    commit.pages,
                    commit.status,
                    time.monotonic() - started,
                )
                totals.windows += 1
                totals.visits += landed
                totals.pages += commit.pages
                totals.warnings += commit.warnings
                progress.window_committed(window)
                submit_next()
    except BaseException:
        client.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_if_asked(client: MatomoClient) -> None:
    if client.cancelled:
        raise Interrupted("stopped")
