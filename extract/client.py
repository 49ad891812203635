"""MatomoClient: POSTs to the Reporting API, classifies every failure, retries the transient ones.

The token travels only in the form body. It is never put in a URL, a log line, an exception message
or a repr: messages are built from our own words plus Matomo's (redacted) error text, never from
`str()` of a requests exception or of the request.
"""

from __future__ import annotations

import email.utils
import html
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_before_delay
from tenacity.wait import wait_exponential_jitter

from extract import __version__
from extract.errors import (
    ExtractError,
    MatomoAuthError,
    MatomoRefusedError,
    MatomoUnavailableError,
    TransientError,
)
from extract.ratelimit import RateLimiter

log = logging.getLogger(__name__)

T = TypeVar("T")

# A 200 {"result":"error"} is permanent when it is about the request itself; anything else (database
# deadlocks, "server has gone away", lock timeouts...) is treated as a passing server problem.
_PERMANENT_MESSAGE = re.compile(
    r"access|authenticat|token|permission|website|idsite|method|module|plugin|not enabled|"
    r"not activated|does not exist|date|period|parameter|segment|please specify|not supported|"
    r"must be|invalid|unknown",
    re.IGNORECASE,
)
_TRANSIENT_MESSAGE = re.compile(
    r"mysql|sqlstate|deadlock|lock wait|gone away|too many connections|try again|temporar|timeout",
    re.IGNORECASE,
)
_HTML_HEADLINE = re.compile(r"<h2[^>]*>(.*?)</h2>", re.IGNORECASE | re.DOTALL)
_JSON_START = tuple(b'[{"')


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0


class MatomoClient:
    def __init__(
        self,
        url: str,
        token: str,
        limiter: RateLimiter,
        *,
        timeout: float = 120.0,
        retry_budget: float = 600.0,
        pool_size: int = 8,
    ) -> None:
        self.url = url
        self._token = token
        self._limiter = limiter
        self._timeout = timeout
        self._retry_budget = retry_budget
        self._host = urlsplit(url).netloc
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"matomo-warehouse/{__version__}"
        # Retries are ours (classified, budgeted); urllib3 must not retry behind our back.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._stats_lock = threading.Lock()
        self.stats = ClientStats()

    def __repr__(self) -> str:
        return f"MatomoClient(url={self.url!r})"

    def close(self) -> None:
        self._session.close()

    def cancel(self) -> None:
        """Make every waiting or future call of this client raise Interrupted (run is stopping)."""
        self._limiter.cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._limiter.cancelled.is_set()

    def call(
        self,
        method: str,
        params: Mapping[str, str | int] | None = None,
        *,
        what: str = "",
        retry_budget: float | None = None,
    ) -> Any:
        """Call `Module.method` and return the decoded JSON; `what` names the request in messages.

        Raises MatomoRefusedError (permanent, Matomo's message kept) or MatomoUnavailableError (the
        transient failures outlasted `retry_budget` seconds, default the configured budget).
        """
        return self._call(method, params or {}, self._decode, what, retry_budget)

    def call_array(
        self,
        method: str,
        params: Mapping[str, str | int],
        parse: Callable[[bytes], T],
        *,
        what: str = "",
        retry_budget: float | None = None,
    ) -> T:
        """For methods that answer a JSON array (Live pages): `parse(body)` gets the raw body and
        runs inside the retry loop, so a body cut mid-JSON (orjson.JSONDecodeError) is retried.

        Lets the caller decode big responses its own way (and bound how many are decoded at once).
        Any other answer is classified as by call(); a non-error, non-array one is an ExtractError.
        """

        def decode(response: requests.Response) -> T:
            body = self._checked_body(response)
            if response.status_code >= 400 or body.lstrip()[:1] != b"[":
                answer = self._decode(response)  # raises for error envelopes and non-API pages
                raise ExtractError(
                    f"Matomo answered {method} ({what}) with {self._clean(str(answer))[:80]!r} "
                    "instead of a list"
                )
            try:
                return parse(body)
            except orjson.JSONDecodeError:
                raise TransientError("response body cut mid-JSON") from None

        return self._call(method, params, decode, what, retry_budget)

    def _call(
        self,
        method: str,
        params: Mapping[str, str | int],
        decode: Callable[[requests.Response], T],
        what: str,
        retry_budget: float | None,
    ) -> T:
        budget = self._retry_budget if retry_budget is None else retry_budget
        label = f"{method} ({what})" if what else method
        started = time.monotonic()
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_before_delay(budget),
            wait=_Wait(),
            sleep=self._limiter.sleep,
            before_sleep=lambda state: self._before_retry(state, label),
            reraise=True,
        )
        try:
            return retrying(lambda: decode(self._post(method, params)))
        except TransientError as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise MatomoUnavailableError(
                f"Matomo unavailable: {exc} on {label}; gave up after {attempts} attempts in "
                f"{time.monotonic() - started:.0f} s (retry_budget_seconds = {budget:g})"
            ) from None

    def _before_retry(self, state: RetryCallState, label: str) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        # Info, not warning: retrying is the plan working; the run's summary counts the retries
        # and an exhausted budget is an error of its own.
        log.info(
            "%s: %s; retry %d in %.1f s", label, error, state.attempt_number, state.upcoming_sleep
        )

    def _post(self, method: str, params: Mapping[str, str | int]) -> requests.Response:
        data: dict[str, str | int] = {"module": "API", "format": "JSON", "method": method, **params}
        data["token_auth"] = self._token
        with self._limiter.slot():
            with self._stats_lock:
                self.stats.requests += 1
            try:
                response = self._session.post(
                    self.url, data=data, timeout=(min(10.0, self._timeout), self._timeout)
                )
            except requests.Timeout:
                raise TransientError(
                    f"no answer from {self._host} within {self._timeout:g} s"
                ) from None
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ):
                raise TransientError(
                    "connection dropped in the middle of the response body"
                ) from None
            except requests.ConnectionError as exc:
                raise TransientError(f"cannot connect to {self.url} ({_reason(exc)})") from None
        return response

    def _checked_body(self, response: requests.Response) -> bytes:
        """The body of an answer whose HTTP status is not itself a failure."""
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        if status == 429 or status >= 500:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                self._limiter.defer(retry_after)
            reason = "too many requests" if status == 429 else "server error"
            raise TransientError(f"HTTP {status} ({reason})", retry_after)
        if status in (401, 403):
            raise self._refused_auth(response, content_type)
        if status == 408:
            raise TransientError("HTTP 408 (request timeout)")
        return response.content

    def _decode(self, response: requests.Response) -> Any:
        body = self._checked_body(response)
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = None
            if status < 400 and (not body.strip() or body.lstrip()[:1][0] in _JSON_START):
                raise TransientError("response body cut mid-JSON") from None
        if isinstance(decoded, dict) and decoded.get("result") == "error":
            raise self._classify_message(self._clean(str(decoded.get("message", ""))), status)
        if status >= 400 or decoded is None:
            raise MatomoRefusedError(
                f"{self.url} did not answer like the Matomo API (HTTP {status}, "
                f"{content_type or 'no content type'}); check url in [matomo]"
            )
        return decoded

    def _refused_auth(self, response: requests.Response, content_type: str) -> MatomoAuthError:
        if "json" in content_type:
            try:
                message = str(orjson.loads(response.content).get("message", ""))
            except (orjson.JSONDecodeError, AttributeError):
                message = ""
            message = self._clean(message) or "access denied"
            return MatomoAuthError(
                f"Matomo refused access (HTTP {response.status_code}): {message} "
                "Give the token view access to the site, or fix sites in [matomo].",
                message,
            )
        headline = _HTML_HEADLINE.search(response.text)
        message = self._clean(re.sub(r"<[^>]+>", "", headline.group(1))) if headline else ""
        return MatomoAuthError(
            f"Matomo rejected the token (HTTP {response.status_code}): "
            f"{message or 'authentication failed'} Check MATOMO_TOKEN (or token_file).",
            message,
        )

    @staticmethod
    def _classify_message(message: str, status: int) -> MatomoRefusedError | TransientError:
        if _TRANSIENT_MESSAGE.search(message) or not _PERMANENT_MESSAGE.search(message):
            return TransientError(f"Matomo error: {message}")
        return MatomoRefusedError(f"Matomo refused the request (HTTP {status}): {message}", message)

    def _clean(self, message: str) -> str:
        """Matomo's text, HTML-decoded, on one line, minus the token should Matomo echo it."""
        text = " ".join(html.unescape(message).split())
        return text.replace(self._token, "<token>") if self._token else text


class _Wait:
    """Exponential backoff with jitter; a server's Retry-After takes precedence."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(initial=0.5, max=30.0, jitter=1.0)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return error.retry_after + random.uniform(0.0, 1.0)
        return float(self._backoff(state))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(exc: requests.ConnectionError) -> str:
    """A short cause for a connection failure, without echoing the request."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, urllib3.exceptions.NameResolutionError):
            return "host name not found"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, requests.exceptions.SSLError | urllib3.exceptions.SSLError):
            return "TLS error"
        cause = cause.__context__ or cause.__cause__ or _first_arg_exception(cause)
    return "connection error"


def _first_arg_exception(exc: BaseException) -> BaseException | None:
    # urllib3 wraps the socket error in MaxRetryError.reason / ProtocolError.args[1].
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    nested = [arg for arg in exc.args if isinstance(arg, BaseException)]
    return nested[0] if nested else None
