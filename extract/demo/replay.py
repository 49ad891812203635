"""ReplayDataset: serves responses captured from a real Matomo 5.

Reads either the capture directory layout (`index_*.jsonl` next to `live/`, `reports/`, `meta/`,
`examples/`, `errors/`) or the vendored bundles (`live.jsonl.gz`, `reports.jsonl.gz`,
`meta_examples.jsonl.gz`, `errors.jsonl.gz`, one captured file per line with its `body`).

Live: every visit in any captured Live response (deduplicated by idVisit; the pages with
`doNotFetchActions` are skipped) is filed under the site-local day of its last action, and the
server re-applies Live semantics, so any paging/order/minTimestamp request can be answered.
Everything else: the captured response whose parameters match, or an honest error. Reports
also answer `period=day&date=A,B` (the map of the captured days) and `format_metrics=0` (the
default-format capture with its rates as fractions), as Matomo would.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from extract.demo.dataset import (
    DatasetError,
    missing_parameter_message,
    unknown_method_message,
    unknown_site_message,
)
from extract.demo.generator import local_midnight, zone
from extract.demo.live import METHOD as LIVE_METHOD
from extract.demo.live import live_window, local_date

logger = logging.getLogger(__name__)

_BUNDLES = ("live", "reports", "meta_examples", "errors")
# Transport parameters that do not select a response.
_TRANSPORT = frozenset({"module", "format", "token_auth", "method"})
_PAGING = frozenset({"filter_limit", "filter_offset"})
_DEFAULT_LIMIT = 100
_PERCENT = re.compile(r"-?\d+(\.\d+)?%")


@dataclass(frozen=True)
class Capture:
    """One captured response: request parameters (no token) and the raw body text."""

    params: dict[str, str]
    body: str

    @property
    def is_error(self) -> bool:
        return self.body.startswith('{"result":"error"')


@dataclass(frozen=True)
class _Stored:
    body: str
    # A table captured with filter_limit=-1 can answer any filter_limit/filter_offset.
    pageable: bool


def read_captures(path: Path) -> Iterator[Capture]:
    """Successful JSON responses captured with a token that sees every site."""
    if (path / "live.jsonl.gz").exists():
        for name in _BUNDLES:
            with gzip.open(path / f"{name}.jsonl.gz", "rt", encoding="utf-8") as lines:
                yield from _usable(json.loads(line) for line in lines)
    elif (path / "index_live.jsonl").exists():
        for name in _BUNDLES:
            with (path / f"index_{name}.jsonl").open(encoding="utf-8") as lines:
                entries = (json.loads(line) for line in lines)
                yield from _usable(_with_body(path, e) for e in entries if _is_json_ok(e))
    else:
        raise FileNotFoundError(f"{path} holds neither capture bundles nor index_*.jsonl files")


def _with_body(root: Path, entry: dict[str, Any]) -> dict[str, Any]:
    text = (root / entry["file"]).read_text(encoding="utf-8")
    if entry["file"].startswith("errors/"):
        # errors/*.json wrap the response: {request, status, headers, body, ...}
        wrapped: dict[str, Any] = json.loads(text)
        return wrapped
    return {**entry, "body": text}


def _is_json_ok(entry: dict[str, Any]) -> bool:
    ok: bool = entry["http_status"] == 200
    return ok and entry["content_type"].startswith("application/json")


def _usable(entries: Iterator[dict[str, Any]]) -> Iterator[Capture]:
    for entry in entries:
        if "request" in entry:  # errors bundle shape
            request = entry["request"]
            if "superuser" not in request.get("token_kind", ""):
                continue  # the view-only user's captures would contradict the superuser's
            params = request["body_params"]
            content_type = entry["headers"].get("Content-Type", "")
            entry = {"http_status": entry["status"], "content_type": content_type, **entry}
        else:
            params = entry["params"]
        if _is_json_ok(entry):
            yield Capture({k: str(v) for k, v in params.items()}, entry["body"])


class ReplayDataset:
    """A Dataset over captured responses (see module docstring)."""

    def __init__(self, path: Path) -> None:
        self._visits: dict[tuple[int, dt.date], list[bytes]] = {}
        self._responses: dict[tuple[str, ...], _Stored] = {}
        self._methods: set[str] = set()
        self._reports: set[str] = set()  # report methods: period and date are required
        self._timezones: dict[int, str] = {}
        visits_by_id: dict[int, bytes] = {}
        for capture in read_captures(path):
            method = capture.params.get("method", "")
            if not capture.is_error:  # a captured refusal does not make its method real
                self._methods.add(method)
            if method == LIVE_METHOD:
                if capture.params.get("doNotFetchActions") != "1":
                    body = orjson.loads(capture.body)
                    for visit in body if isinstance(body, list) else ():  # skip error envelopes
                        visits_by_id.setdefault(visit["idVisit"], orjson.dumps(visit))
                continue
            self._remember(method, capture)
            if method == "SitesManager.getSiteFromId":
                site = orjson.loads(capture.body)
                self._timezones[int(site["idsite"])] = site["timezone"]
            elif method == "API.getReportMetadata":
                self._reports.update(
                    f"{report['module']}.{report['action']}"
                    for report in orjson.loads(capture.body)
                )
        if not self._timezones:
            raise FileNotFoundError(f"{path} has no SitesManager.getSiteFromId capture")
        self._methods |= self._reports
        self._file_visits(visits_by_id.values())
        logger.info("replaying %d visits and %d responses from %s",
                    len(visits_by_id), len(self._responses), path)

    def _remember(self, method: str, capture: Capture) -> None:
        exact = _key(method, capture.params, _TRANSPORT)
        self._responses.setdefault(exact, _Stored(capture.body, pageable=False))
        limit = capture.params.get("filter_limit")
        # Tables captured whole serve any page; metadata (no period) is not a paged table.
        if limit == "-1" or (limit is None and "period" not in capture.params):
            loose = ("*", *_key(method, capture.params, _TRANSPORT | _PAGING))
            self._responses.setdefault(loose, _Stored(capture.body, pageable=limit == "-1"))

    def _file_visits(self, encoded: Iterable[bytes]) -> None:
        by_day: dict[tuple[int, dt.date], list[tuple[int, int, bytes]]] = defaultdict(list)
        for raw in encoded:
            visit = orjson.loads(raw)
            ts, site = visit["lastActionTimestamp"], visit["idSite"]
            day = local_date(ts, zone(self._timezones[site]))
            by_day[(site, day)].append((ts, visit["idVisit"], raw))
        # Kept encoded: a fresh dict per request is one orjson.loads away.
        self._visits = {key: [raw for *_, raw in sorted(rows)] for key, rows in by_day.items()}

    # -- Dataset protocol ------------------------------------------------------------------

    def site_ids(self) -> list[int]:
        return sorted(self._timezones)

    def site_timezone(self, site_id: int) -> str:
        return self._timezones[site_id]

    def first_day(self) -> dt.date:
        return min(day for _, day in self._visits)

    def end_timestamp(self) -> int:
        """UTC epoch at which the last captured local day has ended for every site."""
        last = max(day for _, day in self._visits) + dt.timedelta(days=1)
        return max(local_midnight(last, zone(tz)) for tz in self._timezones.values())

    def visits_for_day(self, site_id: int, day: dt.date, now: int) -> list[dict[str, Any]]:
        # Captured visits are final; one is visible once its last action has happened.
        visits = (orjson.loads(raw) for raw in self._visits.get((site_id, day), ()))
        return [v for v in visits if v["lastActionTimestamp"] <= now]

    def call(self, method: str, params: Mapping[str, str], now: int) -> Any:
        self._check(method, params, now)
        days = _days(params) if method in self._reports else []
        if days:
            # Several days: Matomo's map keyed by each day's label, built from the day captures.
            return {day: self._answer(method, {**params, "date": day}) for day in days}
        return self._answer(method, params)

    def _answer(self, method: str, params: Mapping[str, str]) -> Any:
        body = self._stored(method, params)
        if body is None and params.get("format_metrics") == "0":
            # The captures used the default format_metrics=bc, which only renders rates as
            # percentages ("35%"); =0 is the same body with the rates as fractions (0.35).
            body = _unformat_rates(self._stored(method, {**params, "format_metrics": ""}))
        if body is None:
            shown = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in _TRANSPORT)
            raise DatasetError(f"The replayed captures hold no response for {method} ({shown}).")
        return body

    def _stored(self, method: str, params: Mapping[str, str]) -> Any:
        stored = self._responses.get(_key(method, params, _TRANSPORT))
        if stored is None:
            stored = self._responses.get(("*", *_key(method, params, _TRANSPORT | _PAGING)))
        if stored is None:
            return None
        body = orjson.loads(stored.body)
        if stored.pageable and isinstance(body, list):
            return _page(body, params)
        return body

    def _check(self, method: str, params: Mapping[str, str], now: int) -> None:
        """Matomo's own refusals, in Matomo's order: method, site, period/date."""
        module, _, name = method.partition(".")
        if method not in self._methods:
            known_module = any(m.startswith(f"{module}.") for m in self._methods)
            raise DatasetError(unknown_method_message(module, name, known_module))
        for key in ("idSite", "idSites"):
            for site in filter(None, params.get(key, "").split(",")):
                if site != "all" and (not site.isdigit() or int(site) not in self._timezones):
                    raise DatasetError(unknown_site_message(site))
        if method in self._reports:
            for required in ("period", "date"):  # the order of the API method's signature
                if not params.get(required):
                    raise DatasetError(missing_parameter_message(required))
        # Validates period and date with Matomo's messages (the zone does not matter here).
        live_window(params.get("period", ""), params.get("date", ""), "UTC", now)


def _key(method: str, params: Mapping[str, str], ignored: frozenset[str]) -> tuple[str, ...]:
    return (method, *(f"{k}={v}" for k, v in sorted(params.items()) if k not in ignored and v))


def _days(params: Mapping[str, str]) -> list[str]:
    """The days of a `period=day&date=A,B` request (none for any other request)."""
    first, comma, last = params.get("date", "").partition(",")
    if params.get("period") != "day" or not comma:
        return []
    try:
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError:
        return []
    return [(start + dt.timedelta(n)).isoformat() for n in range((end - start).days + 1)]


def _unformat_rates(body: Any) -> Any:
    """format_metrics=bc -> 0: every percentage string becomes the fraction it renders."""
    if isinstance(body, dict):
        return {
            k: _fraction(v) if k != "label" and isinstance(v, str) else _unformat_rates(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_unformat_rates(item) for item in body]
    return body


def _fraction(text: str) -> Any:
    if not _PERCENT.fullmatch(text):
        return text
    value = Decimal(text[:-1]) / 100
    return int(value) if value == value.to_integral_value() else float(value)


def _page(rows: list[Any], params: Mapping[str, str]) -> list[Any]:
    try:
        limit = int(params.get("filter_limit") or _DEFAULT_LIMIT)
        offset = max(int(params.get("filter_offset") or 0), 0)
    except ValueError:
        limit, offset = _DEFAULT_LIMIT, 0
    return rows[offset:] if limit < 0 else rows[offset : offset + limit]
