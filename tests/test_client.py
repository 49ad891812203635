"""MatomoClient over real HTTP on loopback: error classification, retries, rate limit, redaction.

A tiny scripted server plays Matomo's captured error shapes (fixtures/matomo-5/errors.jsonl.gz) and
the network faults a client meets in production, one scripted answer per request.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from extract.client import MatomoClient
from extract.errors import (
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    Interrupted,
    MatomoAuthError,
    MatomoRefusedError,
    MatomoUnavailableError,
)
from extract.ratelimit import RateLimiter

TOKEN = "5ecre7t0ken5ecre7t0ken5ecre7t0ke"
FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"


def captured_errors() -> dict[str, dict[str, Any]]:
    with gzip.open(FIXTURES / "errors.jsonl.gz", "rt", encoding="utf-8") as lines:
        return {Path(entry["file"]).stem: entry for entry in map(json.loads, lines)}


ERRORS = captured_errors()

Action = Callable[[BaseHTTPRequestHandler], None]


def answer(
    status: int, body: bytes | str, content_type: str, headers: dict[str, str] | None = None
) -> Action:
    data = body.encode() if isinstance(body, str) else body

    def act(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    return act


def ok(payload: Any) -> Action:
    return answer(200, json.dumps(payload), "application/json; charset=utf-8")


def replay(name: str) -> Action:
    """Answer exactly as the real Matomo 5.0.2 did in the capture `name`."""
    entry = ERRORS[name]
    return answer(entry["status"], entry["body"], entry["headers"]["Content-Type"])


def cut_with_full_length(handler: BaseHTTPRequestHandler) -> None:
    """A proxy dying mid-body: the promised Content-Length never arrives, the connection closes."""
    body = json.dumps([{"idVisit": n, "lastActionTimestamp": n} for n in range(50)]).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[: len(body) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def slow(seconds: float, then: Action) -> Action:
    def act(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        then(handler)

    return act


def reset_connection(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    handler.connection.setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
    )
    handler.connection.close()


class ScriptedMatomo:
    """Answers request n with script[n] (the last entry repeats) and records what it was sent."""

    def __init__(self, path: str = "/") -> None:
        self.script: list[Action] = [ok({"value": "5.0.2"})]
        self.requests: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                with owner._lock:
                    index = len(owner.requests)
                    owner.requests.append(
                        {
                            "path": urlsplit(self.path).path,
                            "query": urlsplit(self.path).query,
                            "headers": dict(self.headers),
                            "form": {key: values[0] for key, values in form.items()},
                            "at": time.monotonic(),
                        }
                    )
                    owner.active += 1
                    owner.max_active = max(owner.max_active, owner.active)
                    action = owner.script[min(index, len(owner.script) - 1)]
                try:
                    action(self)
                finally:
                    with owner._lock:
                        owner.active -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def matomo() -> Iterator[ScriptedMatomo]:
    server = ScriptedMatomo("/matomo/")
    yield server
    server.stop()


def make_client(
    url: str, budget: float = 5.0, rpm: int = 60_000, concurrency: int = 4
) -> MatomoClient:
    from extract.config import normalize_url

    return MatomoClient(
        normalize_url(url),
        TOKEN,
        RateLimiter(rpm, concurrency),
        timeout=1.0,
        retry_budget=budget,
        pool_size=concurrency,
    )


def test_post_with_token_in_the_body_only(matomo: ScriptedMatomo) -> None:
    matomo.script = [ok([{"idsite": 1}])]
    client = make_client(matomo.url.rstrip("/"))  # sub-path without the trailing slash
    assert client.call("SitesManager.getSitesWithAtLeastViewAccess") == [{"idsite": 1}]
    sent = matomo.requests[0]
    assert sent["path"] == "/matomo/index.php"
    assert sent["query"] == ""
    assert sent["form"] == {
        "module": "API",
        "format": "JSON",
        "method": "SitesManager.getSitesWithAtLeastViewAccess",
        "token_auth": TOKEN,
    }
    assert TOKEN not in json.dumps(sent["headers"])
    assert TOKEN not in repr(client)


@pytest.mark.parametrize("suffix", ["", "/", "/index.php"])
def test_sub_path_forms_reach_the_same_endpoint(matomo: ScriptedMatomo, suffix: str) -> None:
    client = make_client(matomo.url.rstrip("/") + suffix)
    client.call("API.getMatomoVersion")
    assert matomo.requests[0]["path"] == "/matomo/index.php"


@pytest.mark.parametrize(
    ("capture", "error", "text"),
    [
        ("wrong_token", MatomoAuthError, "rejected the token (HTTP 401): Unable to authenticate"),
        ("no_token", MatomoAuthError, "refused access (HTTP 401): You can't access this resource"),
        ("no_view_access_site1_as_viewer2_live", MatomoAuthError, "requires 'view' access"),
        ("idsite_does_not_exist_live", MatomoRefusedError, "unexpected website was found"),
        ("unknown_method", MatomoRefusedError, "The method 'getFooBar' does not exist"),
        ("unknown_module", MatomoRefusedError, "activate the plugin on Settings > Plugins page"),
        ("malformed_date_live", MatomoRefusedError, "Date format must be"),
        ("invalid_period", MatomoRefusedError, "The period 'fortnight' is not supported"),
        ("missing_date", MatomoRefusedError, "Please specify a value for 'date'"),
    ],
)
def test_permanent_errors_fail_fast_with_matomos_message(
    matomo: ScriptedMatomo, capture: str, error: type[Exception], text: str
) -> None:
    matomo.script = [replay(capture)]
    with pytest.raises(error, match=re.escape(text)) as raised:
        make_client(matomo.url).call("Live.getLastVisitsDetails", {"idSite": 1})
    assert raised.value.exit_code == EXIT_REFUSED  # type: ignore[attr-defined]
    assert len(matomo.requests) == 1  # no retry
    assert "\n" not in str(raised.value)


def test_a_page_that_is_not_the_api_is_permanent(matomo: ScriptedMatomo) -> None:
    matomo.script = [answer(200, "<html><body>Welcome to nginx</body></html>", "text/html")]
    with pytest.raises(MatomoRefusedError, match=r"did not answer like the Matomo API.*check url"):
        make_client(matomo.url).call("API.getMatomoVersion")
    matomo.script = [answer(404, "<html>Not Found</html>", "text/html")]
    with pytest.raises(MatomoRefusedError, match="HTTP 404"):
        make_client(matomo.url).call("API.getMatomoVersion")


DEADLOCK = {
    "result": "error",
    "message": "Mysql error: Deadlock found when trying to get lock; try restarting transaction",
}


@pytest.mark.parametrize(
    "fault",
    [
        answer(500, "<html>Internal Server Error</html>", "text/html"),
        answer(502, "<html>Bad Gateway</html>", "text/html"),
        answer(503, "<html>Service Unavailable</html>", "text/html"),
        answer(429, "Too Many Requests", "text/plain", {"Retry-After": "0"}),
        ok(DEADLOCK),
        answer(200, '[{"idSite":1,"idVisit":4206,"visitIp":"188.72', "application/json"),
        cut_with_full_length,
        slow(1.5, ok([])),  # longer than the client's 1 s timeout
        reset_connection,
    ],
    ids=["500", "502", "503", "429", "deadlock", "truncated-json", "cut-body", "timeout", "reset"],
)
def test_transient_faults_are_retried_until_success(
    matomo: ScriptedMatomo, fault: Action, caplog: pytest.LogCaptureFixture
) -> None:
    matomo.script = [fault, fault, ok([{"idVisit": 1}])]
    caplog.set_level(logging.DEBUG)
    client = make_client(matomo.url, budget=15.0)
    assert client.call("Live.getLastVisitsDetails", {"idSite": 1}, what="site 1 2026-11-05") == [
        {"idVisit": 1}
    ]
    assert len(matomo.requests) == 3
    assert client.stats.retries == 2
    assert "site 1 2026-11-05" in caplog.text
    assert TOKEN not in caplog.text


def test_retry_after_is_honoured(matomo: ScriptedMatomo) -> None:
    matomo.script = [answer(429, "Too Many Requests", "text/plain", {"Retry-After": "2"}), ok([])]
    started = time.monotonic()
    make_client(matomo.url).call("Live.getLastVisitsDetails")
    gap = matomo.requests[1]["at"] - matomo.requests[0]["at"]
    assert gap >= 2.0
    assert time.monotonic() - started < 5


def test_retry_after_pauses_every_thread(matomo: ScriptedMatomo) -> None:
    """A 429 seen by one worker holds back the others too: no hammering during a storm."""
    matomo.script = [answer(429, "", "text/plain", {"Retry-After": "1"}), ok([])]
    client = make_client(matomo.url)
    client.call("API.getMatomoVersion")
    threads = [
        threading.Thread(target=client.call, args=("API.getMatomoVersion",)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first_429 = matomo.requests[0]["at"]
    assert all(request["at"] - first_429 >= 1.0 for request in matomo.requests[1:])


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (answer(503, "down", "text/html"), "HTTP 503"),
        (answer(429, "slow down", "text/plain", {"Retry-After": "1"}), "HTTP 429"),
        (answer(200, "[{", "application/json"), "cut mid-JSON"),
        (ok(DEADLOCK), "Deadlock"),
    ],
    ids=["5xx", "429-storm", "never-valid-json", "deadlock"],
)
def test_budget_exhausted_is_one_clear_line(
    matomo: ScriptedMatomo, fault: Action, cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    matomo.script = [fault]
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(MatomoUnavailableError) as raised:
        make_client(matomo.url, budget=3.0).call(
            "Live.getLastVisitsDetails", what="site 1 2026-11-05"
        )
    message = str(raised.value)
    assert raised.value.exit_code == EXIT_UNAVAILABLE
    assert cause in message
    assert "site 1 2026-11-05" in message
    assert "retry_budget_seconds = 3" in message
    assert "\n" not in message
    assert time.monotonic() - started < 6
    assert len(matomo.requests) >= 2
    assert TOKEN not in message
    assert TOKEN not in caplog.text


def test_closed_port_is_unavailable_and_names_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the with-block ends
    caplog.set_level(logging.DEBUG)
    with pytest.raises(
        MatomoUnavailableError,
        match=rf"cannot connect to http://127.0.0.1:{port}/index.php \(connection refused\)",
    ):
        make_client(f"http://127.0.0.1:{port}/", budget=1.0).call("API.getMatomoVersion")
    assert TOKEN not in caplog.text


def test_token_echoed_by_matomo_is_redacted(matomo: ScriptedMatomo) -> None:
    matomo.script = [ok({"result": "error", "message": f"token_auth {TOKEN} is not a valid token"})]
    with pytest.raises(MatomoRefusedError) as raised:
        make_client(matomo.url).call("API.getMatomoVersion")
    assert TOKEN not in str(raised.value)
    assert TOKEN not in raised.value.message
    assert "<token>" in str(raised.value)


def test_rate_limit_paces_requests(matomo: ScriptedMatomo) -> None:
    client = make_client(matomo.url, rpm=600)  # one request per 0.1 s
    for _ in range(8):
        client.call("API.getMatomoVersion")
    times = [request["at"] for request in matomo.requests]
    assert times[-1] - times[0] >= 0.65  # 7 gaps of 0.1 s (some slack for clock granularity)


def test_concurrency_cap_holds_across_threads(matomo: ScriptedMatomo) -> None:
    matomo.script = [slow(0.2, ok([]))]
    client = make_client(matomo.url, concurrency=2)
    threads = [
        threading.Thread(target=client.call, args=("API.getMatomoVersion",)) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(matomo.requests) == 6
    assert matomo.max_active == 2


def test_cancel_interrupts_a_retry_wait_at_once(matomo: ScriptedMatomo) -> None:
    """A stop request (Ctrl-C) must not sit out a 30 s Retry-After."""
    matomo.script = [answer(429, "", "text/plain", {"Retry-After": "30"})]
    client = make_client(matomo.url, budget=60)
    threading.Timer(0.5, client.cancel).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        client.call("Live.getLastVisitsDetails")
    assert time.monotonic() - started < 2
    with pytest.raises(Interrupted):
        client.call("API.getMatomoVersion")  # and nothing starts after it
    assert len(matomo.requests) == 1
