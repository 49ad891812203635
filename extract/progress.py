"""A rich progress bar (windows, visits, visits/s, current site/day) on a terminal, else silent."""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from extract.windows import DayWindow


class _VisitRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        visits = int(task.fields.get("visits", 0))
        elapsed = task.elapsed or 0.0
        rate = visits / elapsed if elapsed > 0 else 0.0
        return Text(f"{visits:,} visits {rate:,.0f}/s", style="progress.data.speed", no_wrap=True)


def progress_wanted(quiet: bool) -> bool:
    """Only for a person watching: stderr is a terminal, not --quiet, not CI."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


class RunProgress:
    """Thread-safe sink for visits.load_windows; a no-op when disabled."""

    def __init__(self, enabled: bool) -> None:
        self._lock = threading.Lock()
        self._visits = 0
        self._bar: Progress | None = None
        if enabled:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),  # windows
                _VisitRate(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
        self._task = self._bar.add_task("starting", total=None, visits=0) if self._bar else None

    def __enter__(self) -> RunProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def set_total(self, windows: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=windows, description="fetching")

    def visits_fetched(self, window: DayWindow, count: int) -> None:
        if self._bar is None or self._task is None:
            return
        with self._lock:
            self._visits += count
            visits = self._visits
        self._bar.update(self._task, visits=visits, description=str(window))

    def window_committed(self, window: DayWindow) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)
