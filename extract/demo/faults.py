"""Deterministic fault injection for the demo server.

Every fault is a pure function of (fault seed, request number): a run with the same seed and the
same request order sees the same faults, and a retried request gets a new number, so it is
decided afresh. At most MAX_STREAK requests in a row are faulted, so retries always get through.
The rate limit is the exception: it is a real rolling one-minute window, like Matomo Cloud's.
"""

from __future__ import annotations

import collections
import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

MAX_STREAK = 3
RATE_WINDOW_SECONDS = 60.0


class FaultKind(Enum):
    SERVER_ERROR = "5xx"  # 500/502/503 with an HTML body (PHP fatal, proxy, maintenance)
    CUT_CONNECTION = "cut"  # full Content-Length announced, half the body sent, socket closed
    TRUNCATED_JSON = "truncated"  # HTTP 200, consistent Content-Length, body cut mid-JSON
    ERROR_ENVELOPE = "error"  # HTTP 200 {"result":"error"} for a transient database error


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 200


@dataclass(frozen=True)
class FaultConfig:
    seed: int = 0
    server_error: float = 0.0  # probability per request of a 5xx
    truncate: float = 0.0  # probability of a truncated body (either style)
    error: float = 0.0  # probability of a transient error envelope

    def __post_init__(self) -> None:
        total = self.server_error + self.truncate + self.error
        if min(self.server_error, self.truncate, self.error) < 0 or total >= 1:
            raise ValueError("fault probabilities must be >= 0 and sum to less than 1")


class FaultPlan:
    """Which fault, if any, request number `n` gets."""

    def __init__(self, config: FaultConfig) -> None:
        self._config = config
        self._threshold = config.server_error + config.truncate + config.error
        self._faulted = bytearray()  # outcome of every request number so far (the streak rule)
        self._lock = threading.Lock()

    def fault_for(self, n: int) -> Fault | None:
        if self._threshold == 0 or not self._is_faulted(n):
            return None
        draw, c = self._draw(n), self._config
        if draw < c.server_error:
            return Fault(FaultKind.SERVER_ERROR, (500, 502, 503)[self._pick(n, 3)])
        if draw < c.server_error + c.truncate:
            return Fault((FaultKind.CUT_CONNECTION, FaultKind.TRUNCATED_JSON)[self._pick(n, 2)])
        return Fault(FaultKind.ERROR_ENVELOPE)

    def _is_faulted(self, n: int) -> bool:
        # Request n is faulted when its draw says so, unless the MAX_STREAK requests before it
        # all were. Outcomes are computed in order and remembered; still a function of (seed, n).
        with self._lock:
            for m in range(len(self._faulted), n + 1):
                streak = m >= MAX_STREAK and all(self._faulted[m - MAX_STREAK : m])
                self._faulted.append(not streak and self._draw(m) < self._threshold)
            return bool(self._faulted[n])

    def _draw(self, n: int) -> float:
        return self._hash(n, "draw") / 2**64

    def _pick(self, n: int, choices: int) -> int:
        return self._hash(n, "pick") % choices

    def _hash(self, n: int, salt: str) -> int:
        digest = hashlib.blake2b(f"{self._config.seed}:{n}:{salt}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big")


class RateLimiter:
    """More than `per_minute` admitted requests in the last 60 s -> refuse with Retry-After."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._admitted: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def admit(self) -> int | None:
        """None when the request may proceed, else the seconds to wait (Retry-After)."""
        with self._lock:
            now = self._clock()
            while self._admitted and self._admitted[0] <= now - RATE_WINDOW_SECONDS:
                self._admitted.popleft()
            if len(self._admitted) < self._limit:
                self._admitted.append(now)
                return None
            return max(1, math.ceil(self._admitted[0] + RATE_WINDOW_SECONDS - now))


def server_error_body(status: int) -> bytes:
    """What a PHP-FPM/nginx front returns: an HTML page, never Matomo's JSON."""
    reasons = {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Temporarily Unavailable",
    }
    title = f"{status} {reasons[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def rate_limit_body(retry_after: int) -> bytes:
    # [unverified] Matomo Cloud's exact wording is not captured; it is a short plain-text refusal.
    return f"Too Many Requests: rate limit exceeded, retry after {retry_after} seconds.\n".encode()


TRANSIENT_ERROR_MESSAGE = (
    "Mysql error: SQLSTATE[40001]: Serialization failure: 1213 Deadlock found when trying to get "
    "lock; try restarting transaction"
)
