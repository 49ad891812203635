"""Checkpoints and the run log: the rows the warehouse keeps in _extract_windows / _extract_runs.

The state lives in the warehouse itself, written in the same transaction as the data it describes,
so a crash can never leave a checkpoint that claims more than was landed.
"""

from __future__ import annotations

import datetime as dt
import secrets
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

COMPLETE = "complete"
PARTIAL = "partial"


NO_TRUNCATION = -1


@dataclass
class VisitKeys:
    """The typed keys of every visit in a window's page files, in file order (one entry per
    visit as sent, window filter not applied). Compact arrays: 32 bytes a visit."""

    visit_ids: array[int] = field(default_factory=lambda: array("q"))
    last_actions: array[int] = field(default_factory=lambda: array("q"))
    action_counts: array[int] = field(default_factory=lambda: array("q"))
    truncated: array[int] = field(default_factory=lambda: array("q"))  # NO_TRUNCATION if absent

    def append(self, visit_id: int, last_action: int, action_count: int, truncated: int) -> None:
        self.visit_ids.append(visit_id)
        self.last_actions.append(last_action)
        self.action_counts.append(action_count)
        self.truncated.append(truncated)

    def __len__(self) -> int:
        return len(self.visit_ids)


@dataclass(frozen=True)
class WindowCommit:
    """One fetched (site, day) window: Live response bodies spooled as page files (JSON arrays,
    exactly as Matomo sent them) in fetch order, with the keys Python already parsed out."""

    site_id: int
    day: dt.date
    status: str  # COMPLETE or PARTIAL
    start: int  # visits with start <= lastActionTimestamp <= cutoff belong to the window
    cutoff: int
    files: tuple[Path, ...]
    keys: VisitKeys
    pages: int
    warnings: int
    run_id: str
    extracted_at: dt.datetime


@dataclass
class RunRecord:
    run_id: str
    command: str
    started_at: dt.datetime
    as_of: dt.datetime
    finished_at: dt.datetime | None = None
    status: str = "running"  # running, ok, failed, interrupted
    visits: int = 0
    report_rows: int = 0
    warnings: int = 0
    error: str | None = None


@dataclass(frozen=True)
class WindowState:
    day: dt.date
    status: str
    visits: int
    warnings: int
    completed_at: dt.datetime


@dataclass(frozen=True)
class SiteStatus:
    site_id: int
    windows: tuple[WindowState, ...]
    visits: int  # rows in the raw visits table

    @property
    def loaded_through(self) -> dt.date | None:
        return loaded_through(self.windows)

    @property
    def first_day(self) -> dt.date | None:
        return self.windows[0].day if self.windows else None

    @property
    def warnings(self) -> int:
        return sum(window.warnings for window in self.windows)

    @property
    def partial_days(self) -> list[dt.date]:
        return [window.day for window in self.windows if window.status != COMPLETE]

    @property
    def last_loaded_at(self) -> dt.datetime | None:
        return max((window.completed_at for window in self.windows), default=None)


@dataclass(frozen=True)
class WarehouseStatus:
    sites: tuple[SiteStatus, ...]
    last_run: RunRecord | None = None
    runs: int = 0
    extra: dict[str, int] = field(default_factory=dict)  # row counts of other raw tables


def new_run_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def loaded_through(windows: Iterable[WindowState]) -> dt.date | None:
    """The last day such that it and every day since the first loaded one are complete."""
    through = None
    expected = None
    for window in sorted(windows, key=lambda item: item.day):
        if window.status != COMPLETE or (expected is not None and window.day != expected):
            break
        through = window.day
        expected = window.day + dt.timedelta(days=1)
    return through
