"""One limiter shared by every client thread: a request-rate pacer plus a concurrency cap.

Matomo Cloud allows 200 Live requests per minute per IP and 8 simultaneous raw-data queries per
account (api-reference §7.1); both are configurable for self-hosted servers. Pacing (a token bucket
holding one token) keeps every rolling minute at or under the limit instead of bursting into a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from extract.errors import Interrupted

_POLL_SECONDS = 0.1


class StopFlag:
    """A run-wide stop request, set from anywhere (a signal handler included) and polled.

    A plain attribute rather than a threading.Event: setting it takes no lock, so a signal
    handler can never block on a lock the thread it interrupted is holding.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: int,
        concurrency: int,
        cancelled: StopFlag | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 60.0 / requests_per_minute
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._clock = clock
        self.cancelled = cancelled or StopFlag()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the concurrent slots and wait for this request's turn in the pace."""
        with self._slots:
            self._wait_for_turn()
            yield

    def defer(self, seconds: float) -> None:
        """The server asked everyone to wait (Retry-After): no request starts before then."""
        with self._lock:
            self._next_start = max(self._next_start, self._clock() + seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep that a cancelled run interrupts within a tenth of a second."""
        deadline = time.monotonic() + seconds
        while not self.cancelled.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, _POLL_SECONDS))
        raise Interrupted("cancelled")

    def _wait_for_turn(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        self.sleep(start - now)
