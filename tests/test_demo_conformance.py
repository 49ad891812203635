"""The demo server in replay mode against the real Matomo 5.0.2 captures (vendored bundles).

Every captured request is sent again, over HTTP, to `python -m extract.demo serve --replay`; the
answer must match the capture: status, content type, and the body byte for byte (PHP-style
JSON). Live pages are not stored responses: the server files every captured visit under its
site-local day and re-applies Live semantics (windows, order, paging, minTimestamp, filters), so
these tests check those semantics against what Matomo really returned.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from extract.demo.server import DemoServer

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"
LIVE = "Live.getLastVisitsDetails"
CAPTURED_AT = "2026-11-22T08:47:00Z"  # MANIFEST: captured 2026-11-22 ~08:47 UTC


def _bundle(name: str) -> Iterator[dict[str, Any]]:
    with gzip.open(FIXTURES / f"{name}.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def _params(raw: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in raw.items() if k != "token_auth"}


LIVE_CAPTURES = [e for e in _bundle("live") if e["params"]["method"] == LIVE]
OTHER_LIVE_CAPTURES = [e for e in _bundle("live") if e["params"]["method"] != LIVE]
META_CAPTURES = list(_bundle("meta_examples"))
ERROR_CAPTURES = [e for e in _bundle("errors") if "viewer2" not in e["request"]["token_kind"]]


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with DemoServer(replay=str(FIXTURES), now=CAPTURED_AT) as running:
        yield running


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def post(
    http: requests.Session, server: DemoServer, params: dict[str, str], token: str | None
) -> requests.Response:
    data = dict(params)
    if token is not None:
        data["token_auth"] = token
    return http.post(server.url + "index.php", data=data, timeout=60)


def shape(value: Any) -> Any:
    """JSON structure with values replaced by their JSON types (key order kept)."""
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def assert_same_visits(served: list[dict[str, Any]], captured: list[dict[str, Any]]) -> None:
    assert [v["idVisit"] for v in served] == [v["idVisit"] for v in captured]
    for mine, real in zip(served, captured, strict=True):
        assert list(mine) == list(real), f"idVisit {real['idVisit']}: keys differ"
        assert shape(mine) == shape(real), f"idVisit {real['idVisit']}: JSON types differ"
        assert mine == real, f"idVisit {real['idVisit']}: values differ"


@pytest.mark.parametrize("capture", LIVE_CAPTURES, ids=lambda e: e["file"].split("/")[-1])
def test_live_request_answers_like_matomo(
    capture: dict[str, Any], server: DemoServer, session: requests.Session
) -> None:
    """Day pages (offsets 0/100/200, the empty last page), range asc/desc, minTimestamp with
    range+asc and without period, filter_limit=13 paging, doNotFetchActions, a segment."""
    response = post(session, server, _params(capture["params"]), server.token)
    assert response.status_code == capture["http_status"] == 200
    assert response.headers["Content-Type"] == capture["content_type"]
    assert_same_visits(response.json(), json.loads(capture["body"]))
    assert response.content == capture["body"].encode()


@pytest.mark.parametrize("capture", ERROR_CAPTURES, ids=lambda e: e["file"].split("/")[-1])
def test_error_statuses_types_and_bodies(
    capture: dict[str, Any], server: DemoServer, session: requests.Session
) -> None:
    """Wrong token (HTML 401, also with format=xml), no token (JSON 401), unknown
    method/module/site, malformed date/range, invalid period, missing date/method, Live
    filter_limit -1/0/none and an offset beyond the end."""
    kind = capture["request"]["token_kind"]
    token = {"superuser": server.token, "wrong": "f" * 32, "none": None}[kind.split(" ")[0]]
    response = post(session, server, _params(capture["request"]["body_params"]), token)
    assert response.status_code == capture["status"]
    assert response.headers["Content-Type"] == capture["headers"]["Content-Type"]
    # The HTML page links the server's own logo URL.
    expected = capture["body"].replace("http://127.0.0.1:8088/", server.url)
    assert response.text == expected


@pytest.mark.parametrize(
    "capture", META_CAPTURES + OTHER_LIVE_CAPTURES, ids=lambda e: e["file"].split("/")[-1]
)
def test_metadata_examples_and_bulk(
    capture: dict[str, Any], server: DemoServer, session: requests.Session
) -> None:
    """Includes API.getBulkRequest (4 urls, one failing), which the server assembles from
    sub-requests that inherit the root parameters."""
    response = post(session, server, _params(capture["params"]), server.token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == capture["content_type"]
    assert response.text == capture["body"]


def test_bulk_request_is_built_not_replayed(server: DemoServer, session: requests.Session) -> None:
    """Sub-requests in an order never captured: each answer is the one captured on its own."""
    urls = [
        "method=VisitsSummary.get&idSite=2&period=day&date=2026-11-05",
        "method=Live.getLastVisitsDetails&idSite=3&period=day&date=2026-11-03&filter_limit=13",
        "method=VisitsSummary.get&idSite=77&period=day&date=2026-11-05",
    ]
    params = {"module": "API", "format": "JSON", "method": "API.getBulkRequest"}
    params.update({f"urls[{i}]": url for i, url in enumerate(urls)})
    body = post(session, server, params, server.token).json()
    day_page = next(e for e in LIVE_CAPTURES if e["file"].endswith("limit13_offset0000.json"))
    assert body[0]["nb_visits"] == _daily_totals()[(2, "2026-11-05")]["nb_visits"]
    assert_same_visits(body[1], json.loads(day_page["body"]))
    assert body[2] == {
        "result": "error",
        "message": "An unexpected website was found in the request: website id was set to '77' .",
    }


def _daily_totals() -> dict[tuple[int, str], dict[str, int]]:
    with (FIXTURES / "daily_totals.csv").open(newline="") as rows:
        return {
            (int(row["idsite"]), row["date"]): {"nb_visits": int(row["nb_visits"]),
                                                "live_visits": int(row["live_visits"])}
            for row in csv.DictReader(rows)
        }


def test_reports_replay(server: DemoServer, session: requests.Session) -> None:
    """Captured reports (filter_limit=-1) come back whole (every 4th capture, to stay fast);
    tables over 100 rows honour filter_limit/filter_offset, and without filter_limit the
    default 100 rows apply, like Matomo's API_datatable_default_limit."""
    paged = 0
    for number, capture in enumerate(_bundle("reports")):
        params, body = _params(capture["params"]), json.loads(capture["body"])
        if number % 4 == 0:
            assert post(session, server, params, server.token).text == capture["body"]
        if isinstance(body, list) and len(body) > 100:
            del params["filter_limit"]
            assert post(session, server, params, server.token).json() == body[:100]
            params.update(filter_limit="10", filter_offset="95")
            assert post(session, server, params, server.token).json() == body[95:105]
            paged += 1
    assert paged > 0


def test_keyset_paging_matches_every_day_total(
    server: DemoServer, session: requests.Session
) -> None:
    """The extractor's protocol (asc + minTimestamp, uncaptured page size 37) yields, for every
    site-day, the visits Matomo's offset pages held, and as many as daily_totals.csv's
    live_visits; over all days every visit of the capture exactly once, bar the day-boundary
    visits that Matomo returns for two consecutive days."""
    totals = _daily_totals()
    by_day: dict[tuple[int, str], set[int]] = {}
    for capture in LIVE_CAPTURES:
        if capture["file"].startswith("live/site"):
            key = (int(capture["params"]["idSite"]), capture["params"]["date"])
            by_day.setdefault(key, set()).update(v["idVisit"] for v in json.loads(capture["body"]))
    assert set(by_day) == set(totals)
    for (site, day), expected in sorted(by_day.items()):
        seen: list[int] = []
        cursor = None
        while True:
            params = {"module": "API", "format": "JSON", "method": LIVE, "idSite": str(site),
                      "period": "day", "date": day, "filter_sort_order": "asc",
                      "filter_limit": "37"}
            if cursor is not None:
                params["minTimestamp"] = str(cursor)
            page = post(session, server, params, server.token).json()
            fresh = [v for v in page if v["idVisit"] not in seen]
            seen += [v["idVisit"] for v in fresh]
            if len(page) < 37:
                break
            cursor = page[-1]["lastActionTimestamp"] - 1
        assert len(seen) == len(set(seen))
        assert set(seen) == expected, (site, day)
        assert len(seen) == totals[(site, day)]["live_visits"], (site, day)
