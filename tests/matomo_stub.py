"""A scripted stand-in for Matomo on loopback, for answers the demo server never gives (a visit
cut at 500 actions, a body that is never valid JSON): `answers` maps an API method to a function
of the request's form fields returning (HTTP status, body bytes). Any other method answers `[]`,
as Matomo does for a site without goals, custom dimensions or report rows; `API.getBulkRequest`
answers the list of its sub-requests' answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

Answer = Callable[[dict[str, str]], tuple[int, bytes]]


def json_answer(value: Any) -> Answer:
    body = json.dumps(value).encode()
    return lambda form: (200, body)


def _empty(form: dict[str, str]) -> tuple[int, bytes]:
    return 200, b"[]"


class StubMatomo:
    def __init__(self, answers: dict[str, Answer]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = answers.get(form["method"], _bulk)(form)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        def _bulk(form: dict[str, str]) -> tuple[int, bytes]:
            if form["method"] != "API.getBulkRequest":
                return _empty(form)
            urls = sorted((int(k[5:-1]), v) for k, v in form.items() if k.startswith("urls["))
            subs = [{k: v[0] for k, v in parse_qs(query).items()} for _, query in urls]
            bodies = [answers.get(sub["method"], _empty)(sub)[1] for sub in subs]
            return 200, b"[" + b",".join(bodies) + b"]"

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> StubMatomo:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
