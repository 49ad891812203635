"""The demo server: Live windows and JSON encoding (pure), faults, and the real subprocess in
synthetic mode (visit shapes vs the captures, DST days, the today quirk, faults, sub-paths,
the moving clock, bulk, auth, logging)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from extract.demo.dataset import DatasetError
from extract.demo.faults import MAX_STREAK, FaultConfig, FaultKind, FaultPlan, RateLimiter
from extract.demo.generator import local_midnight, zone
from extract.demo.live import Window, live_window
from extract.demo.server import TOKEN_ENV, DemoServer, php_json

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"
LIVE = "Live.getLastVisitsDetails"
NEW_YORK = "America/New_York"
HOUR = 3600

StartServer = Callable[..., DemoServer]


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def call(server: DemoServer, token: str | None = "", **params: str) -> requests.Response:
    data = {"module": "API", "format": "JSON", **params}
    if token is not None:
        data["token_auth"] = token or server.token
    return requests.post(server.url + "index.php", data=data, timeout=60)


def live(server: DemoServer, site: int, **params: str) -> list[dict[str, Any]]:
    response = call(server, method=LIVE, idSite=str(site), **params)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list), body
    return body


# --------------------------------------------------------------------------- pure: JSON


def test_php_json_escapes_like_json_encode() -> None:
    value = {"url": "https://a.example/ä/€", "emoji": "x😀", "n": [1, 2.5, None, True]}
    assert php_json(value) == (
        b'{"url":"https:\\/\\/a.example\\/\\u00e4\\/\\u20ac","emoji":"x\\ud83d\\ude00",'
        b'"n":[1,2.5,null,true]}'
    )
    # Same text as Python's own ASCII-only encoder once slashes are escaped.
    expected = json.dumps(value, separators=(",", ":")).replace("/", "\\/")
    assert php_json(value).decode() == expected


# --------------------------------------------------------------------------- pure: windows


def test_day_windows_follow_the_site_timezone_through_dst() -> None:
    now = epoch("2027-01-01T00:00:00+00:00")
    fall_back = live_window("day", "2026-11-01", NEW_YORK, now)
    assert fall_back == Window(
        epoch("2026-11-01T04:00:00+00:00"), epoch("2026-11-02T05:00:00+00:00")
    )
    assert fall_back.end is not None
    assert fall_back.end - fall_back.start == 25 * HOUR
    spring = live_window("day", "2026-03-08", NEW_YORK, now)
    assert spring is not None
    assert spring.end is not None
    assert spring.end - spring.start == 23 * HOUR
    berlin = live_window("day", "2026-11-02", "Europe/Berlin", now)
    assert berlin == Window(epoch("2026-11-01T23:00:00+00:00"), epoch("2026-11-02T23:00:00+00:00"))


def test_periods_ranges_and_open_ends() -> None:
    now = epoch("2026-11-22T08:47:00+00:00")
    utc = "UTC"
    assert live_window("week", "2026-11-04", utc, now) == Window(
        epoch("2026-11-02T00:00:00+00:00"), epoch("2026-11-09T00:00:00+00:00")
    )
    assert live_window("month", "2026-10-15", utc, now) == Window(
        epoch("2026-10-01T00:00:00+00:00"), epoch("2026-11-01T00:00:00+00:00")
    )
    assert live_window("range", "2026-11-01,2026-11-21", NEW_YORK, now) == Window(
        epoch("2026-11-01T04:00:00+00:00"), epoch("2026-11-22T05:00:00+00:00")
    )
    # lastN is N days whatever the period, and never has an upper bound.
    assert live_window("week", "last3", utc, now) == Window(
        epoch("2026-11-20T00:00:00+00:00"), None
    )
    assert live_window("day", "previous2", utc, now) == Window(
        epoch("2026-11-20T00:00:00+00:00"), None
    )
    # A window that ends in the future stops at now + 1 s.
    assert live_window("month", "2026-11-03", utc, now) == Window(
        epoch("2026-11-01T00:00:00+00:00"), now + 1
    )
    assert live_window("", "2026-11-03", utc, now) is None
    assert live_window("day", "", utc, now) is None


def test_today_quirk_starts_yesterday_with_no_end() -> None:
    now = epoch("2026-11-10T15:00:00+00:00")  # 10:00 in New York
    yesterday_midnight = Window(epoch("2026-11-09T05:00:00+00:00"), None)
    assert live_window("day", "2026-11-10", NEW_YORK, now) == yesterday_midnight
    assert live_window("day", "today", NEW_YORK, now) == yesterday_midnight
    # `today` is PHP's UTC date: at 02:00 UTC New York is still on the 9th, so the window
    # starts at New York's midnight of the 10th minus one day... of the UTC date.
    late = epoch("2026-11-11T02:00:00+00:00")
    assert live_window("day", "today", NEW_YORK, late) == Window(
        local_midnight(dt.date(2026, 11, 10), zone(NEW_YORK)), None
    )
    # ...while the explicit local date of today (the 10th in New York) still triggers it.
    assert live_window("day", "2026-11-10", NEW_YORK, late) == yesterday_midnight


@pytest.mark.parametrize(
    ("period", "date", "message"),
    [
        ("fortnight", "2026-11-05", "The period 'fortnight' is not supported."),
        ("day", "2026-13-45", "Date format must be: YYYY-MM-DD"),
        ("day", "not-a-date", "Date format must be: YYYY-MM-DD"),
        ("range", "2026-11-21", "The date '2026-11-21' is not a correct date range."),
    ],
)
def test_window_errors_use_matomo_messages(period: str, date: str, message: str) -> None:
    with pytest.raises(DatasetError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        live_window(period, date, "UTC", epoch("2026-11-22T00:00:00+00:00"))


# --------------------------------------------------------------------------- pure: faults


def test_fault_plan_is_deterministic_and_never_streaks_forever() -> None:
    config = FaultConfig(seed=42, server_error=0.3, truncate=0.3, error=0.3)
    plan = FaultPlan(config)
    faults = [plan.fault_for(n) for n in range(5000)]
    # Same seed, another instance asked in another order: the same faults.
    fresh = FaultPlan(config)
    assert faults == [fresh.fault_for(n) for n in reversed(range(5000))][::-1]
    other = FaultPlan(FaultConfig(43, 0.3, 0.3, 0.3))
    assert faults != [other.fault_for(n) for n in range(5000)]
    streak = longest = 0
    for fault in faults:
        streak = streak + 1 if fault else 0
        longest = max(longest, streak)
    assert longest == MAX_STREAK
    kinds = {f.kind for f in faults if f}
    assert kinds == set(FaultKind)
    assert {f.status for f in faults if f and f.kind is FaultKind.SERVER_ERROR} == {500, 502, 503}
    rate = sum(1 for f in faults if f) / len(faults)
    assert 0.6 < rate < 0.9  # 0.9 asked for, less the forced breaks after streaks


def test_fault_probabilities_are_validated() -> None:
    with pytest.raises(ValueError, match="sum to less than 1"):
        FaultConfig(server_error=0.5, truncate=0.5)
    assert all(FaultPlan(FaultConfig()).fault_for(n) is None for n in range(100))


def test_rate_limiter_rolling_minute() -> None:
    clock = [1000.0]
    limiter = RateLimiter(3, clock=lambda: clock[0])
    assert [limiter.admit() for _ in range(3)] == [None, None, None]
    clock[0] += 20
    assert limiter.admit() == 40  # the first admission leaves the window in 40 s
    clock[0] += 40
    assert limiter.admit() is None


# --------------------------------------------------------------------------- synthetic server


@pytest.fixture(scope="module")
def synthetic() -> Iterator[DemoServer]:
    with DemoServer(days=7, visits_per_day=40) as server:
        yield server


Shapes = tuple[
    dict[int, list[set[str]]],
    dict[tuple[int, str], set[str]],
    dict[tuple[int, Any], list[set[str]]],
    dict[tuple[Any, str], set[str]],
]


def _captured_shapes() -> Shapes:
    """Per site: visit key sets, JSON types per key; per action type: key sets and types."""
    visit_keys: dict[int, list[set[str]]] = defaultdict(list)
    visit_types: dict[tuple[int, str], set[str]] = defaultdict(set)
    action_keys: dict[tuple[int, Any], list[set[str]]] = defaultdict(list)
    action_types: dict[tuple[Any, str], set[str]] = defaultdict(set)
    with gzip.open(FIXTURES / "live.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            entry = json.loads(line)
            if entry["params"]["method"] != LIVE or "doNotFetchActions" in entry["params"]:
                continue
            for visit in json.loads(entry["body"]):
                site = visit["idSite"]
                if set(visit) not in visit_keys[site]:
                    visit_keys[site].append(set(visit))
                for key, value in visit.items():
                    visit_types[(site, key)].add(type(value).__name__)
                for action in visit["actionDetails"]:
                    if set(action) not in action_keys[(site, action["type"])]:
                        action_keys[(site, action["type"])].append(set(action))
                    for key, value in action.items():
                        action_types[(action["type"], key)].add(type(value).__name__)
    return visit_keys, visit_types, action_keys, action_types


def test_synthetic_visits_have_the_captured_keys_and_types(synthetic: DemoServer) -> None:
    visit_keys, visit_types, action_keys, action_types = _captured_shapes()
    served = 0
    for site in (1, 2, 3):
        for visit in live(synthetic, site, period="range", date="2026-11-01,2026-11-07",
                          filter_limit="-1"):
            served += 1
            assert set(visit) in visit_keys[site], (site, set(visit) ^ set.union(*visit_keys[site]))
            for key, value in visit.items():
                assert type(value).__name__ in visit_types[(site, key)], (site, key, value)
            for action in visit["actionDetails"]:
                kind = action["type"]
                assert set(action) in action_keys[(site, kind)], (site, kind, sorted(action))
                for key, value in action.items():
                    known = action_types[(kind, key)]
                    if known == {"NoneType"}:
                        continue  # only ever null in the captures: the type is not known
                    assert type(value).__name__ in known, (kind, key, value)
    assert served > 100


def test_new_york_dst_day_window_and_day_partition(synthetic: DemoServer) -> None:
    """Each day answers the visits of its 23/24/25-hour local window (incl. next midnight);
    the days partition the range's visits by the local date of their last action."""
    tz = zone(NEW_YORK)
    everything = {v["idVisit"]: v for v in live(synthetic, 2, period="range",
                                                 date="2026-11-01,2026-11-07", filter_limit="-1")}
    from_days: dict[int, str] = {}
    for offset in range(7):
        day = dt.date(2026, 11, 1) + dt.timedelta(offset)
        start, end = local_midnight(day, tz), local_midnight(day + dt.timedelta(1), tz)
        visits = live(synthetic, 2, period="day", date=day.isoformat(), filter_limit="-1")
        assert all(start <= v["lastActionTimestamp"] <= end for v in visits)
        for visit in visits:
            if visit["lastActionTimestamp"] < end:
                from_days[visit["idVisit"]] = day.isoformat()
    fall_back = local_midnight(dt.date(2026, 11, 2), tz) - local_midnight(dt.date(2026, 11, 1), tz)
    assert fall_back == 25 * HOUR
    assert set(from_days) == set(everything)
    for visit_id, day in from_days.items():
        last = everything[visit_id]["lastActionTimestamp"]
        assert dt.datetime.fromtimestamp(last, tz).date().isoformat() == day


def test_today_quirk_and_open_day(demo_server: StartServer) -> None:
    now = epoch("2026-11-04T15:00:00+00:00")
    server = demo_server(days=7, visits_per_day=40, now=str(now))
    today = live(server, 1, period="day", date="2026-11-04", filter_limit="-1")
    keyword = live(server, 1, period="day", date="today", filter_limit="-1")
    yesterday = live(server, 1, period="day", date="2026-11-03", filter_limit="-1")
    assert [v["idVisit"] for v in today] == [v["idVisit"] for v in keyword]
    stamps = [v["lastActionTimestamp"] for v in today]
    assert min(stamps) >= epoch("2026-11-03T00:00:00+00:00")
    assert max(stamps) <= now
    # The window starts yesterday: all of yesterday's visits are in it, plus today's so far.
    assert {v["idVisit"] for v in yesterday} < {v["idVisit"] for v in today}
    assert any(s >= epoch("2026-11-04T00:00:00+00:00") for s in stamps)
    assert live(server, 1, period="day", date="2026-11-05") == []


def test_clock_step_grows_the_open_day(demo_server: StartServer) -> None:
    server = demo_server(days=7, visits_per_day=40, now="2026-11-04T12:00:00Z", clock_step="1800")
    counts, latest = [], []
    for _ in range(4):
        visits = live(server, 1, period="day", date="2026-11-04", filter_limit="-1",
                      filter_sort_order="asc", minTimestamp=str(epoch("2026-11-04T00:00:00+00:00")))
        counts.append(len(visits))
        latest.append(max(v["lastActionTimestamp"] for v in visits))
    assert counts == sorted(counts)
    assert counts[-1] > counts[0]
    assert latest[-1] > latest[0]
    # Non-Live calls read the clock without moving it.
    assert call(server, method="API.getMatomoVersion").json() == {"value": "5.0.2"}


def test_paging_asc_desc_offset_and_limits(synthetic: DemoServer) -> None:
    day = {"period": "day", "date": "2026-11-03"}
    everything = live(synthetic, 1, filter_limit="-1", **day)
    ascending = live(synthetic, 1, filter_limit="-1", filter_sort_order="asc", **day)
    assert ascending == sorted(everything, key=lambda v: (v["lastActionTimestamp"], v["idVisit"]))
    assert [v["idVisit"] for v in everything] == [
        v["idVisit"] for v in sorted(ascending, key=lambda v: -v["lastActionTimestamp"])
    ]
    assert len(live(synthetic, 1, **day)) == min(100, len(everything))  # default filter_limit
    assert live(synthetic, 1, filter_limit="0", **day) == []
    assert live(synthetic, 1, filter_offset="100000", **day) == []
    pages = [live(synthetic, 1, filter_limit="7", filter_offset=str(o), **day)
             for o in range(0, len(everything) + 7, 7)]
    assert [v for page in pages for v in page] == everything
    assert live(synthetic, 1, countVisitorsToFetch="3", filter_offset="5", **day) == everything[:3]
    cut = everything[len(everything) // 2]["lastActionTimestamp"]
    newer = live(synthetic, 1, filter_limit="-1", minTimestamp=str(cut), **day)
    assert newer == [v for v in everything if v["lastActionTimestamp"] > cut]
    bare = live(synthetic, 1, filter_limit="3", doNotFetchActions="1", **day)
    assert [v["actionDetails"] for v in bare] == [[], [], []]
    assert [v["idVisit"] for v in bare] == [v["idVisit"] for v in everything[:3]]


def test_bulk_inherits_root_parameters(synthetic: DemoServer) -> None:
    response = call(
        synthetic,
        method="API.getBulkRequest",
        filter_limit="5",
        **{
            "urls[0]": "method=Live.getLastVisitsDetails&idSite=1&period=day&date=2026-11-02",
            "urls[1]": "method=VisitsSummary.get&idSite=1&period=day&date=2026-11-02",
            "urls[2]": "method=VisitsSummary.getFooBar&idSite=1&period=day&date=2026-11-02",
        },
    )
    assert response.status_code == 200
    visits, summary, failure = response.json()
    assert len(visits) == 5  # filter_limit came from the root request
    all_visits = live(synthetic, 1, period="day", date="2026-11-02", filter_limit="-1")
    assert summary["nb_visits"] == sum(
        1 for v in all_visits if v["lastActionTimestamp"] < epoch("2026-11-03T00:00:00+00:00")
    )
    assert failure["result"] == "error"
    assert "getFooBar" in failure["message"]


def test_auth_and_request_shapes(synthetic: DemoServer) -> None:
    summary = {"method": "VisitsSummary.get", "idSite": "3", "period": "day", "date": "2026-11-02"}
    wrong = call(synthetic, token="0" * 32, **summary)
    assert (wrong.status_code, wrong.headers["Content-Type"]) == (401, "text/html; charset=utf-8")
    assert "Unable to authenticate with the provided token" in wrong.text
    missing = call(synthetic, token=None, **summary)
    assert missing.status_code == 401
    assert missing.json() == {
        "result": "error",
        "message": "You can't access this resource as it requires 'view' access for the "
        "website id = 3.",
    }
    # GET with everything in the query string; the query string wins over the form body.
    query = {"module": "API", "format": "json", "token_auth": synthetic.token, **summary}
    got = requests.get(synthetic.url + "index.php", params=query, timeout=30)
    posted = requests.post(synthetic.url + "index.php", params={"idSite": "3"},
                           data={**query, "idSite": "2"}, timeout=30)
    assert got.status_code == posted.status_code == 200
    assert got.json() == posted.json() == call(synthetic, **summary).json()
    # Errors that no capture holds come from Matomo's rules.
    unknown_site = call(synthetic, method=LIVE, idSite="77", period="day", date="2026-11-02")
    assert unknown_site.json()["message"] == (
        "An unexpected website was found in the request: website id was set to '77' ."
    )
    bad_period = call(synthetic, method=LIVE, idSite="1", period="quarter", date="2026-11-02")
    assert bad_period.json()["message"].startswith("The period 'quarter' is not supported.")
    xml = call(synthetic, format="xml", **summary)
    assert xml.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert "<error" in xml.text
    assert requests.get(synthetic.url + "other.php", timeout=30).status_code == 404


def test_sub_path(demo_server: StartServer) -> None:
    server = demo_server(days=2, visits_per_day=10, path="/matomo/")
    assert server.url.endswith("/matomo/")
    assert call(server, method="API.getMatomoVersion").json() == {"value": "5.0.2"}
    root = server.url.removesuffix("matomo/") + "index.php"
    assert requests.post(root, data={"module": "API"}, timeout=30).status_code == 404


# --------------------------------------------------------------------------- faults over HTTP


def _outcome(server: DemoServer) -> str:
    try:
        response = call(server, method=LIVE, idSite="1", period="day", date="2026-11-02")
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return "cut"  # Content-Length promised more than arrived before the socket closed
    if response.status_code >= 500:
        assert response.headers["Content-Type"].startswith("text/html")
        return str(response.status_code)
    assert response.status_code == 200
    try:
        body = response.json()
    except requests.exceptions.JSONDecodeError:
        return "truncated"
    if isinstance(body, dict):
        assert body["message"].startswith("Mysql error:")
        return "error"
    return "ok"


def test_faults_are_deterministic_and_retries_succeed(demo_server: StartServer) -> None:
    options = {"days": 3, "visits_per_day": 20, "fault_5xx": 0.25, "fault_truncate": 0.25,
               "fault_error": 0.2, "fault_seed": 7}
    runs = []
    for _ in range(2):
        server = demo_server(**options)
        runs.append([_outcome(server) for _ in range(40)])
    assert runs[0] == runs[1]
    seen = set(runs[0])
    assert {"cut", "truncated", "error", "ok"} <= seen
    assert seen & {"500", "502", "503"}
    # A client that retries gets through: no fault streak is longer than MAX_STREAK.
    for _ in range(10):
        attempts = 1
        while _outcome(server) != "ok":
            attempts += 1
        assert attempts <= MAX_STREAK + 1


def test_rate_limit_answers_429_with_retry_after(demo_server: StartServer) -> None:
    """Like Matomo Cloud's 200 Live requests per minute: the limit counts Live requests only."""
    server = demo_server(days=2, visits_per_day=10, rate_limit="5")
    live = {"method": "Live.getLastVisitsDetails", "idSite": "1", "period": "day",
            "date": "2026-11-01"}
    statuses = [call(server, **live).status_code for _ in range(5)]
    refused = call(server, **live)
    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert call(server, method="API.getMatomoVersion").status_code == 200


def test_slow_adds_latency(demo_server: StartServer) -> None:
    server = demo_server(days=2, visits_per_day=10, slow="0.3")
    started = time.perf_counter()
    call(server, method="API.getMatomoVersion")
    assert time.perf_counter() - started >= 0.3


def test_token_never_reaches_the_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "extract.demo", "serve", "--days", "2", "--visits-per-day", "5",
             "--log-level", "DEBUG"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, TOKEN_ENV: "feedfacefeedfacefeedfacefeedface"},
        )
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split()[1]
            for token in ("feedfacefeedfacefeedfacefeedface", "badbadbadbad"):
                requests.get(url + "index.php", timeout=30, params={
                    "module": "API", "format": "JSON", "method": LIVE, "idSite": "1",
                    "period": "day", "date": "2026-11-01", "token_auth": token})
        finally:
            process.terminate()
            process.wait(timeout=10)
    text = log.read_text()
    assert LIVE in text  # debug request logging is on
    assert "feedface" not in text
    assert "badbad" not in text
