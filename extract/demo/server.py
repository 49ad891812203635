"""A Matomo 5 Reporting API over HTTP on loopback: auth, error shapes, Live, bulk, faults.

`MatomoApi` answers one request's parameters the way Matomo 5.0.2 does (checked against the
captures in tests/fixtures/matomo-5); `make_http_server` puts it behind a threading HTTP server
with fault injection; `DemoServer` runs `python -m extract.demo serve` as a subprocess for tests,
the quickstart and benchmarks.

JSON is written like PHP's json_encode (see `phpjson`), so served bytes equal captured ones.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from extract.demo import DEMO_TOKEN
from extract.demo import live as live_api
from extract.demo.dataset import (
    METHOD_MISSING_MESSAGE,
    Dataset,
    DatasetError,
    no_view_access_message,
)
from extract.demo.faults import (
    TRANSIENT_ERROR_MESSAGE,
    FaultConfig,
    FaultKind,
    FaultPlan,
    RateLimiter,
    rate_limit_body,
    server_error_body,
)
from extract.demo.phpjson import php_json

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
# DemoServer hands the token over in this environment variable, never in argv.
TOKEN_ENV = "MATOMO_DEMO_TOKEN"  # noqa: S105 (a variable name)
BULK_METHOD = "API.getBulkRequest"
_BULK_KEY = re.compile(r"urls\[(\d+)\]")


def error_envelope(message: str) -> dict[str, str]:
    # Matomo's JSON renderer turns newlines in messages into spaces.
    return {"result": "error", "message": message.replace("\n", " ")}


# --------------------------------------------------------------------------- the API


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    visits: int = 0  # Live visits in the body (for --slow-per-100)
    headers: tuple[tuple[str, str], ...] = ()


class Clock:
    """Server time: a fixed start that moves `step` seconds per Live request served."""

    def __init__(self, start: int, step: float) -> None:
        self._start, self._step = start, step
        self._served = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return int(self._start + self._step * self._served)

    def tick(self) -> int:
        """The time a Live request sees; the next one sees `step` seconds later."""
        with self._lock:
            seen = int(self._start + self._step * self._served)
            self._served += 1
            return seen


class MatomoApi:
    """One API request's parameters in, Matomo's response out."""

    def __init__(self, dataset: Dataset, token: str, clock: Clock) -> None:
        self._dataset = dataset
        self._live = live_api.LiveEndpoint(dataset)
        self._token = token
        self._clock = clock

    def handle(self, params: Mapping[str, str], base_url: str) -> Response:
        if params.get("module") != "API":
            message = "The demo server only serves the Reporting API (module=API)."
            return self._json(400, error_envelope(message))
        token = params.get("token_auth", "")
        if token and token != self._token:
            # FrontController refuses a bad token before dispatch, with HTML whatever the format.
            page = AUTH_ERROR_PAGE.replace("{base}", base_url)
            return Response(401, HTML_TYPE, page.encode(), headers=_NO_CACHE)
        if params.get("format", "xml").lower() != "json":
            return Response(200, XML_TYPE, _xml_error("The demo server only renders format=JSON."))
        method = params.get("method", "")
        if not method:
            return self._json(200, error_envelope(METHOD_MISSING_MESSAGE))
        if not token:
            return self._json(401, error_envelope(no_view_access_message(_first_site(params))))
        if method == BULK_METHOD:
            return self._bulk(params)
        body, visits = self._call(method, params)
        return Response(200, JSON_TYPE, body, visits)

    def _call(self, method: str, params: Mapping[str, str]) -> tuple[bytes, int]:
        """The encoded body and the number of Live visits in it."""
        try:
            if method == live_api.METHOD:
                return self._live.answer(params, self._clock.tick())
            return php_json(self._dataset.call(method, params, self._clock.now())), 0
        except DatasetError as error:
            return php_json(error_envelope(str(error))), 0

    def _bulk(self, params: Mapping[str, str]) -> Response:
        """API.getBulkRequest: sub-requests inherit every root parameter they lack."""
        inherited = {k: v for k, v in params.items() if not _BULK_KEY.fullmatch(k)}
        indexed = sorted((int(m[1]), v) for k, v in params.items() if (m := _BULK_KEY.fullmatch(k)))
        results, visits = [], 0
        for _, query in indexed:
            sub = {**inherited, **dict(parse_qsl(query, keep_blank_values=True)), "format": "json"}
            if sub.get("method", "") in ("", BULK_METHOD):
                continue  # Matomo skips nested bulk requests
            body, count = self._call(sub["method"], sub)
            results.append(body)
            visits += count
        return Response(200, JSON_TYPE, b"[" + b",".join(results) + b"]", visits)

    @staticmethod
    def _json(status: int, body: Any) -> Response:
        return Response(status, JSON_TYPE, php_json(body))


def _first_site(params: Mapping[str, str]) -> int | None:
    first = params.get("idSite", "").split(",")[0].strip()
    return int(first) if first.isdigit() else None


def _xml_error(message: str) -> bytes:
    escaped = message.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return (
        '<?xml version="1.0" encoding="utf-8" ?>\n<result>\n'
        f'\t<error message="{escaped}" />\n</result>'
    ).encode()


_NO_CACHE = (("Cache-Control", "private, no-cache, no-store"),)

# errors.jsonl.gz `wrong_token`, byte for byte except the logo URL, which names this server.
AUTH_ERROR_PAGE = """<!DOCTYPE html>
<html>
<head>
\t<meta charset="utf-8">
\t<meta name="robots" content="noindex,nofollow">
\t<title>Matomo &rsaquo; Error</title>
\t<link rel="shortcut icon" href="misc/user/favicon.png" />
\t<link rel="stylesheet" type="text/css" href="plugins/Morpheus/stylesheets/simple_structure.css" />
</head>
<body id="simple">

<div class="logo">
\t<img title="Matomo" alt="Matomo" style="height: 40px;" src="{base}plugins/Morpheus/images/logo.svg"/>
</div>

<div class="box">

\t<div class="header">
\t\t<h1>An error occurred</h1>
\t</div>

\t<div class="content"><h2>Unable to authenticate with the provided token. It is either invalid or expired.</h2><p><a href="javascript:window.history.back();">Go Back</a> | <a href="index.php">Go to Matomo</a></p>  <ul>
                            <li><a rel="noreferrer noopener" target="_blank" href="https://matomo.org">Matomo.org homepage</a></li>
                            <li><a rel="noreferrer noopener" target="_blank" href="https://matomo.org/faq/">Frequently Asked Questions</a></li>
                            <li><a rel="noreferrer noopener" target="_blank" href="https://matomo.org/docs/">User Guides</a></li>
                            <li><a rel="noreferrer noopener" target="_blank" href="https://forum.matomo.org/">Matomo Forums</a></li>
                            <li><a rel="noreferrer noopener" target="_blank" href="https://matomo.org/support/">Professional Support for Matomo</a></li>
                            </ul>    </div>

    <div class="footer">
        <a href="index.php">&laquo; Back to Matomo</a>
    </div>

</div>
</body>
</html>

"""  # noqa: E501


# --------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class HttpBehaviour:
    """Everything between the socket and the API: sub-path, latency and faults."""

    path: str = "/"
    slow: float = 0.0  # seconds per request
    slow_per_100: float = 0.0  # seconds per 100 Live visits served (a real Matomo: ~0.7)
    rate_limit: int = 0  # Live requests per rolling minute; 0 = unlimited
    faults: FaultConfig = field(default_factory=FaultConfig)


class DemoHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: MatomoApi, behaviour: HttpBehaviour) -> None:
        super().__init__(address, _Handler)
        self.api = api
        self.behaviour = behaviour
        self.plan = FaultPlan(behaviour.faults)
        self.limiter = RateLimiter(behaviour.rate_limit) if behaviour.rate_limit > 0 else None
        self._requests = itertools.count()

    def next_request_number(self) -> int:
        return next(self._requests)  # atomic under the GIL

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{self.behaviour.path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections across pages
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't stall 40 ms
    server_version = "matomo-warehouse-demo"
    server: DemoHttpServer

    def do_GET(self) -> None:
        self._serve(body=b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(body=self.rfile.read(length))

    def _serve(self, body: bytes) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        behaviour = self.server.behaviour
        if url.path not in (behaviour.path, behaviour.path + "index.php"):
            self._send(Response(404, HTML_TYPE, b"<h1>Not Found</h1>\n"))
            return
        # PHP's $_GET + $_POST: the query string wins over the form body.
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        params.update(parse_qsl(url.query, keep_blank_values=True))
        response = self._respond(params)
        logger.debug(
            "%s %s -> %d (%d bytes, %d visits, %.3fs)",
            self.command,
            params.get("method", "-"),
            response.status,
            len(response.body),
            response.visits,
            time.perf_counter() - started,
        )

    def _respond(self, params: dict[str, str]) -> Response:
        server, behaviour = self.server, self.server.behaviour
        # Matomo Cloud's per-minute limit that matters here is the Live one (200/min).
        is_live = params.get("method", "").lower().startswith("live.")
        if server.limiter is not None and is_live:
            wait = server.limiter.admit()
            if wait is not None:
                return self._send(
                    Response(429, "text/plain; charset=utf-8", rate_limit_body(wait),
                             headers=(("Retry-After", str(wait)),))
                )
        fault = server.plan.fault_for(server.next_request_number())
        if behaviour.slow:
            time.sleep(behaviour.slow)
        if fault is not None and fault.kind is FaultKind.SERVER_ERROR:
            return self._send(Response(fault.status, HTML_TYPE, server_error_body(fault.status)))
        if fault is not None and fault.kind is FaultKind.ERROR_ENVELOPE:
            envelope = php_json(error_envelope(TRANSIENT_ERROR_MESSAGE))
            return self._send(Response(200, JSON_TYPE, envelope))
        host = self.headers.get("Host") or "{}:{}".format(*server.server_address[:2])
        response = server.api.handle(params, f"http://{host}{behaviour.path}")
        if behaviour.slow_per_100 and response.visits:
            time.sleep(behaviour.slow_per_100 * response.visits / 100)
        if fault is not None and fault.kind is FaultKind.TRUNCATED_JSON:
            response = dataclasses.replace(response, body=response.body[: len(response.body) // 2])
        cut = fault is not None and fault.kind is FaultKind.CUT_CONNECTION
        return self._send(response, cut=cut)

    def _send(self, response: Response, cut: bool = False) -> Response:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if cut:
            # A proxy dying mid-transfer: the full length was promised, half arrives, EOF.
            self.wfile.write(response.body[: len(response.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(response.body)
        return response

    def log_message(self, format: str, *args: Any) -> None:
        # The request line can hold token_auth in a query string: never log it.
        logger.debug("http: %s", (format % args).split("?")[0])


# --------------------------------------------------------------------------- subprocess handle


@dataclass(frozen=True)
class ServerOptions:
    """`python -m extract.demo serve` options (see docs/architecture.md, "Demo server")."""

    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/"
    token: str = DEMO_TOKEN
    seed: int = 20261101
    start: str = "2026-11-01"
    days: int = 21
    visits_per_day: int = 60
    sites: int = 3
    now: str | None = None
    clock_step: float = 0.0
    replay: str | None = None
    slow: float = 0.0
    slow_per_100: float = 0.0
    rate_limit: int = 0
    fault_5xx: float = 0.0
    fault_truncate: float = 0.0
    fault_error: float = 0.0
    fault_late: float = 0.0
    fault_seed: int = 0
    log_level: str = "WARNING"

    def argv(self) -> list[str]:
        """Command-line flags for every option that differs from its default (token excluded)."""
        args: list[str] = []
        for option in dataclasses.fields(self):
            value = getattr(self, option.name)
            if option.name != "token" and value != option.default:
                args += [f"--{option.name.replace('_', '-')}", str(value)]
        return args


class DemoServer:
    """Runs the demo server in a subprocess; `start()` returns once it is listening.

    with DemoServer(replay="tests/fixtures/matomo-5", fault_5xx=0.1) as server:
        requests.post(server.url + "index.php", data={..., "token_auth": server.token})
    """

    def __init__(self, **options: Any) -> None:
        self.options = ServerOptions(**options)
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def token(self) -> str:
        return self.options.token

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 120.0) -> DemoServer:
        command = [sys.executable, "-m", "extract.demo", "serve", *self.options.argv()]
        env = {**os.environ, TOKEN_ENV: self.options.token}
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parents[2]
        )
        try:
            self.url = _await_ready(self._process, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _await_ready(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=min(0.5, max(deadline - time.monotonic(), 0))):
                line = process.stdout.readline()
                if line.startswith("READY "):
                    return line.split(" ", 1)[1].strip()
                if not line and process.poll() is not None:
                    break
            elif process.poll() is not None:
                break
    code = process.poll()
    if code is not None:
        raise RuntimeError(f"demo server exited with status {code} before it was ready")
    raise TimeoutError(f"demo server not ready after {timeout:.0f} s")
