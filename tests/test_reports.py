"""Reports end to end over real HTTP, plus the pure parsing and planning underneath.

The truth is what the demo server answers: the real Matomo 5.0.2 captures in replay mode (every
captured day report, compared value by value with the landed rows), or the synthetic dataset,
asked directly over HTTP at the same server clock the extractor saw.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from matomo_stub import StubMatomo

from extract.config import ReportSpec, Settings, load_settings
from extract.demo.generator import DayClock
from extract.demo.server import DemoServer
from extract.metadata import Site, SiteMetadata
from extract.progress import RunProgress
from extract.reports import (
    DEFAULT_REPORTS,
    PERIODS_PER_REQUEST,
    Period,
    Report,
    SubRequest,
    metrics_of,
    number,
    period_bodies,
    period_of,
    report_days,
    report_periods,
    rows_of,
    site_reports,
    sub_requests,
)
from extract.runner import RunRequest, RunResult, execute
from extract.warehouse import REPORT_ROWS
from extract.warehouse.duckdb import DuckDBWarehouse

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"
CAPTURED_AT = dt.datetime(2026, 11, 22, 8, 47, tzinfo=dt.UTC)
StartServer = Callable[..., DemoServer]
# The captured variants the default set does not pull (it pulls the flat views and order items).
CAPTURED_EXTRAS = (
    ReportSpec("Actions.getDownloads"),
    ReportSpec("Actions.getOutlinks"),
    ReportSpec("Events.getCategory", {"flat": 1}),
    ReportSpec("Goals.getItemsSku", {"abandonedCarts": 1}),
)
# Parameters of a capture that are not the report's own (site, dates, transport).
REQUEST_KEYS = {"module", "format", "method", "idSite", "period", "date", "filter_limit"}
ROW_COLUMNS = "row_index, row_path, label, metrics, row"


def configure(
    tmp_path: Path, url: str, token: str, extra: tuple[ReportSpec, ...] = (), **matomo: Any
) -> Settings:
    options = {"start_date": "2026-11-01", "requests_per_minute": 60_000, **matomo}
    lines = [f'url = "{url}"'] + [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    extras = "".join(
        f'\n[[reports.extra]]\nmethod = "{spec.method}"\n'
        f"params = {{ {', '.join(f'{k} = {json.dumps(v)}' for k, v in spec.params.items())} }}\n"
        for spec in extra
    )
    path = tmp_path / "extract.toml"
    path.write_text(
        "[matomo]\n" + "\n".join(lines) + f'\n[warehouse]\npath = "{tmp_path / "m.duckdb"}"\n'
        + extras,
        encoding="utf-8",
    )
    return load_settings(path, {"MATOMO_TOKEN": token})


def extract(settings: Settings, as_of: dt.datetime) -> RunResult:
    return execute(settings, RunRequest(command="run", as_of=as_of), RunProgress(False))


def query(settings: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def decimals(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


# ------------------------------------------------------------------------- pure parsing


def test_numbers_whatever_matomo_sent() -> None:
    assert number(19) == 19
    assert number("19") == 19
    assert isinstance(number("19"), int)
    assert number("1.5") == 1.5
    assert number("0.5320") == 0.532
    assert number("-3") == -3
    assert number(840.1800000000001) == 840.1800000000001
    for text in ("35%", "de", "1920x1080", "", None, False, True, [1]):
        assert number(text) is None


def test_metrics_keep_numbers_only_nested_goals_included() -> None:
    row = {
        "label": "123",
        "nb_visits": "19",
        "nb_actions": 12,
        "segment": "referrerType==search",
        "idvisitor": "1234567890123456",
        "max_event_value": False,
        "avg_time_on_page": "4.5",
        "goals": {"idgoal=1": {"nb_conversions": "2", "revenue": 5.5}, "idgoal=2": {"x": "n/a"}},
        "subtable": [{"label": "child", "nb_visits": 1}],
    }
    assert metrics_of(row) == {
        "nb_visits": 19,
        "nb_actions": 12,
        "avg_time_on_page": 4.5,
        "goals": {"idgoal=1": {"nb_conversions": 2, "revenue": 5.5}},
    }


def test_row_shapes() -> None:
    assert list(rows_of([])) == []
    assert list(rows_of({})) == []
    zeros = list(rows_of({"nb_visits": 0, "bounce_rate": 0}))
    assert [(r.index, r.path, r.label, r.metrics) for r in zeros] == [
        (0, "", None, {"nb_visits": 0, "bounce_rate": 0})
    ]
    expanded = [
        {"label": "blog", "nb_visits": 3, "idsubdatatable": 7, "subtable": [
            {"label": "/a", "nb_visits": "2"}, {"label": "/b", "nb_visits": 1},
        ]},
        {"label": 404, "nb_visits": "1"},
        {"label": 404, "nb_visits": "4"},
    ]
    rows = list(rows_of(expanded))
    assert [(r.index, r.path, r.label) for r in rows] == [
        (0, "blog", "blog"),
        (1, "blog > /a", "/a"),
        (2, "blog > /b", "/b"),
        (3, "404", "404"),
        (4, "404 #2", "404"),  # a repeated label keeps the slice's row key unique
    ]
    assert "subtable" not in rows[0].row
    assert rows[0].metrics["idsubdatatable"] == 7
    assert rows[1].metrics == {"nb_visits": 2}


def test_multi_date_answers_are_unpacked_by_period_label() -> None:
    days = tuple(Period("day", dt.date(2026, 11, d), dt.date(2026, 11, d)) for d in (21, 22))
    request = SubRequest(1, Report.of("VisitsSummary.get", {}), days)
    assert request.query["date"] == "2026-11-21,2026-11-22"
    body = {"2026-11-21": {"nb_visits": "3"}, "2026-11-22": []}
    unpacked = [(p.label, [r.metrics for r in rows_of(b)]) for p, b in period_bodies(body, request)]
    assert unpacked == [("2026-11-21", [{"nb_visits": 3}]), ("2026-11-22", [])]
    # A period Matomo leaves out has no archive: an empty slice, so its old rows go.
    assert [b for _, b in period_bodies({"2026-11-21": []}, request)] == [[], []]
    assert [b for _, b in period_bodies([], request)] == [[], []]

    week = period_of("week", dt.date(2026, 11, 5))
    weekly = SubRequest(1, Report.of("Actions.get", {}), (week,))
    assert (week.label, weekly.query["date"]) == ("2026-11-02,2026-11-08", "2026-11-02,2026-11-02")
    assert period_of("month", dt.date(2026, 2, 14)) == Period(
        "month", dt.date(2026, 2, 1), dt.date(2026, 2, 28)
    )
    assert period_of("year", dt.date(2026, 2, 14)).label == "2026"
    spanning = report_periods("range", [dt.date(2026, 11, 3), dt.date(2026, 11, 1)])
    ranged = SubRequest(1, Report.of("VisitsSummary.get", {}), tuple(spanning))
    assert ranged.query["period"] == "range"
    assert ranged.query["date"] == "2026-11-01,2026-11-03"
    assert [p for p, _ in period_bodies({"nb_visits": 1}, ranged)] == spanning


def test_days_periods_and_sub_requests() -> None:
    today = dt.date(2026, 11, 22)
    first = dt.date(2026, 11, 1)
    run_days = [dt.date(2026, 11, 10), dt.date(2026, 11, 22), dt.date(2026, 10, 31)]
    days = report_days(run_days, today, first, lookback_days=3)
    # the run's closed days and the trailing three; never today, never before the first day
    assert sorted(days) == [dt.date(2026, 11, d) for d in (10, 19, 20, 21)]
    weeks = report_periods("week", days)
    assert [w.label for w in weeks] == ["2026-11-09,2026-11-15", "2026-11-16,2026-11-22"]

    daily = report_periods("day", [first + dt.timedelta(n) for n in range(10)] + [today])
    reports = [Report.of("VisitsSummary.get", {}), Report.of("Goals.get", {"idGoal": 1})]
    requests = sub_requests(3, reports, daily)
    # consecutive days share a request, up to PERIODS_PER_REQUEST; a gap starts a new one
    assert [len(r.periods) for r in requests] == [PERIODS_PER_REQUEST, 3, 1] * 2
    assert requests[3].query == {
        "idGoal": "1", "idSite": "3", "period": "day", "date": "2026-11-01,2026-11-07",
        "format_metrics": "0", "filter_limit": "-1",
    }


def test_site_reports_follow_the_site() -> None:
    def metadata(ecommerce: int, search: int) -> SiteMetadata:
        payload = {"idsite": 1, "ecommerce": ecommerce, "sitesearch": search}
        return SiteMetadata(Site.from_api(payload), goal_ids=(1, 4), dimension_ids=(2,))

    extra = (ReportSpec("Goals.get", {"idGoal": 1}), ReportSpec("Foo.bar", {"flat": 1}))
    shop = {(r.method, r.params_key) for r in site_reports(metadata(1, 1), extra)}
    blog = {(r.method, r.params_key) for r in site_reports(metadata(0, 0), ())}
    for wanted in [
        ("Goals.get", "idGoal=1"), ("Goals.get", "idGoal=4"),
        ("Goals.get", "idGoal=ecommerceOrder"), ("Goals.getItemsSku", ""),
        ("CustomDimensions.getCustomDimension", "idDimension=2"),
        ("Actions.getSiteSearchKeywords", ""), ("Foo.bar", "flat=1"),
    ]:
        assert wanted in shop
    assert ("Goals.getItemsSku", "") not in blog
    assert ("Actions.getSiteSearchKeywords", "") not in blog
    assert len(site_reports(metadata(1, 1), extra)) == len(shop)  # the extra goal is not doubled


def test_replacing_slices_removes_rows_that_disappeared(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        warehouse.ensure_schema()

        def land(rows: list[str], slices: list[str]) -> None:
            data, keys = tmp_path / "rows.ndjson", tmp_path / "keys.ndjson"
            data.write_text("".join(
                json.dumps({**slice_key(day), "row_path": path, "row_index": 0}) + "\n"
                for day, path in (row.split("/") for row in rows)
            ))
            keys.write_text("".join(json.dumps(slice_key(day)) + "\n" for day in slices))
            warehouse.replace_rows(REPORT_ROWS.name, list(slice_key("1")), data, keys)

        def slice_key(day: str) -> dict[str, Any]:
            return {"site_id": 1, "method": "M.m", "params_key": "", "period": "day",
                    "date": f"2026-11-0{day}"}

        def stored() -> list[str]:
            return sorted(
                f"{date.day}/{path}"
                for date, path in warehouse._con.execute(
                    f"select date, row_path from raw.{REPORT_ROWS.name}"
                ).fetchall()
            )

        land(["1/a", "1/b", "2/a"], ["1", "2"])
        assert stored() == ["1/a", "1/b", "2/a"]
        land(["1/b"], ["1", "2"])  # day 1 lost row a, day 2 is now empty
        assert stored() == ["1/b"]
    finally:
        warehouse.close()


# ------------------------------------------------------------------------- replayed captures


def _day_captures() -> Iterator[dict[str, Any]]:
    with gzip.open(FIXTURES / "reports.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            capture = json.loads(line)
            if capture["params"]["period"] == "day":
                yield capture


def _expected(value: Any, key: str = "") -> Any:
    """A captured value as format_metrics=0 gives it: numbers (also numeric strings) as
    numbers, rates as fractions; None for text."""
    if isinstance(value, dict):
        nested = {k: e for k, v in value.items() if (e := _expected(v, k)) is not None}
        return nested or None
    if isinstance(value, bool) or key in ("label", "segment", "idvisitor", "subtable"):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str) and value.endswith("%"):
        return Decimal(value[:-1]) / 100
    try:
        return Decimal(value) if isinstance(value, str) else None
    except ArithmeticError:
        return None


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, RunResult]:
    tmp_path = tmp_path_factory.mktemp("replayed")
    with DemoServer(replay=str(FIXTURES)) as server:
        settings = configure(tmp_path, server.url, server.token, CAPTURED_EXTRAS)
        return settings, extract(settings, CAPTURED_AT)


def test_every_captured_day_report_lands_with_matomos_numbers(
    replayed: tuple[Settings, RunResult],
) -> None:
    settings, result = replayed
    assert result.record.status == "ok"
    landed: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for site, method, params_key, date, *row in query(
        settings,
        f"select site_id, method, params_key, date, {ROW_COLUMNS} from raw.matomo_report_rows "
        "where period = 'day' order by row_index",
    ):
        landed.setdefault((site, method, params_key, date), []).append(tuple(row))

    compared: set[tuple[str, str]] = set()
    for capture in _day_captures():
        params = capture["params"]
        extra = {k: str(v) for k, v in params.items() if k not in REQUEST_KEYS}
        params_key = "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
        day = dt.date.fromisoformat(params["date"])
        key = (params["idSite"], params["method"], params_key, day)
        body = json.loads(capture["body"], parse_float=Decimal)
        sent = [body] if isinstance(body, dict) else body
        rows = landed.get(key, [])
        assert len(rows) == len(sent), key
        for index, (row_index, path, label, metrics, row) in enumerate(rows):
            assert row_index == index
            captured = sent[index]
            assert label == (None if isinstance(body, dict) else str(captured["label"]))
            assert path == (label or "")
            assert decimals(metrics) == (_expected(captured) or {}), (key, label)
            assert set(json.loads(row)) == set(captured)
        compared.add((params["method"], params_key))
    # every captured report was compared: 43 method/parameter combinations, 49 counting the
    # goal and custom dimension ids
    assert len({(method, re.sub(r"=[^&]*", "", key)) for method, key in compared}) == 43
    assert len(compared) == 49
    assert result.reports.rows == sum(len(rows) for rows in landed.values())


def test_replay_run_records_report_rows_and_skips_uncaptured_reports(
    replayed: tuple[Settings, RunResult],
) -> None:
    settings, result = replayed
    ((report_rows, warnings),) = query(
        settings, "select report_rows, warnings from raw._extract_runs"
    )
    assert report_rows == result.reports.rows > 0
    # Contents.* were not captured; the abandoned-cart items only for the shop: each method
    # warns once, the run still succeeds.
    assert result.reports.warned == {
        "Contents.getContentNames", "Contents.getContentPieces", "Goals.getItemsSku"
    }
    assert warnings == 3
    ((version,),) = query(settings, "select version from raw.matomo_instance")
    assert version == "5.0.2"


# ------------------------------------------------------------------------- synthetic Matomo


def _slices(settings: Settings, days: tuple[dt.date, ...] | None = None) -> set[tuple[Any, ...]]:
    where = "" if days is None else "where date in (" + ", ".join(
        f"date '{day}'" for day in days
    ) + ")"
    return set(query(
        settings,
        "select site_id, method, params_key, period, date, date_label, row_index, row_path, "
        f"label, metrics, row from raw.matomo_report_rows {where}",
    ))


def test_default_set_lands_and_a_second_run_changes_nothing(
    tmp_path: Path, demo_server: StartServer
) -> None:
    server = demo_server(days=5, sites=2, visits_per_day=20)
    settings = configure(tmp_path, server.url, server.token)
    as_of = dt.datetime(2026, 11, 6, 12, tzinfo=dt.UTC)
    first = extract(settings, as_of)
    assert first.record.status == "ok"
    assert first.reports.warned == set()
    methods = {method for (method,) in query(
        settings, "select distinct method from raw.matomo_report_rows"
    )}
    assert {method for method, _, _ in DEFAULT_REPORTS} <= methods
    before = _slices(settings)
    second = extract(settings, as_of)
    assert second.reports.rows > 0  # the trailing days were pulled again...
    assert _slices(settings) == before  # ...and replaced by the very same rows
    ((count, distinct),) = query(
        settings,
        "select count(*), count(distinct (site_id, method, params_key, period, date, row_path)) "
        "from raw.matomo_report_rows",
    )
    assert count == distinct


def _summary(slices: set[tuple[Any, ...]], day: dt.date) -> Any:
    """VisitsSummary.get's metrics of `day` among landed rows."""
    (metrics,) = [row[9] for row in slices if row[1] == "VisitsSummary.get" and row[4] == day]
    return decimals(metrics)


def _server_answer(server: DemoServer, method: str, params: dict[str, str]) -> Any:
    response = requests.post(
        f"{server.url}index.php",
        data={"module": "API", "format": "JSON", "method": method, "token_auth": server.token,
              "format_metrics": "0", "filter_limit": "-1", **params},
        timeout=30,
    )
    return response.json()


def test_late_data_re_pulled_replaces_stale_report_rows(
    tmp_path: Path, demo_server: StartServer
) -> None:
    # Half the visits' tails reach the server up to 4 h late: the first run, ten minutes after
    # Nov 5 ended, lands Nov 5 short; the second, five hours later, must replace it.
    options = {"days": 6, "sites": 1, "visits_per_day": 40, "fault_late": 0.5}
    day = dt.date(2026, 11, 5)
    end = DayClock.of(day, "UTC").end
    early, late = end + 600, end + 5 * 3600
    server = demo_server(now=str(early), **options)
    settings = configure(tmp_path, server.url, server.token)
    extract(settings, dt.datetime.fromtimestamp(early, dt.UTC))
    server.stop()
    trailing = tuple(day - dt.timedelta(n) for n in range(3))
    stale = _slices(settings, trailing)

    server = demo_server(now=str(late), **options)
    settings = configure(tmp_path, server.url, server.token)
    extract(settings, dt.datetime.fromtimestamp(late, dt.UTC))
    fresh = _slices(settings, trailing)
    assert _summary(fresh, day) != _summary(stale, day)

    # Every re-pulled slice holds exactly what the server answers now: nothing stale is left.
    landed: dict[tuple[str, str, dt.date], list[tuple[int, str, Any]]] = {}
    for _, method, params_key, _, date, _, index, path, _, metrics, _ in fresh:
        landed.setdefault((method, params_key, date), []).append((index, path, decimals(metrics)))
    for method, params_key in {(method, key) for method, key, _ in landed}:
        params = dict(part.split("=", 1) for part in params_key.split("&") if part)
        answer = _server_answer(server, method, {
            **params, "idSite": "1", "period": "day", "date": f"{trailing[-1]},{day}"
        })
        for date in trailing:
            wanted = [(r.index, r.path, decimals(json.dumps(r.metrics)))
                      for r in rows_of(answer[date.isoformat()])]
            assert sorted(landed.get((method, params_key, date), [])) == wanted


def test_disabled_plugin_and_missing_parameter_skip_with_one_warning(
    tmp_path: Path, demo_server: StartServer
) -> None:
    server = demo_server(days=3, sites=2, visits_per_day=10)
    extras = (
        ReportSpec("FooBarModule.getReport"),  # a plugin this Matomo does not have
        ReportSpec("CustomDimensions.getCustomDimension"),  # needs idDimension
    )
    settings = configure(tmp_path, server.url, server.token, extras)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "extract"), "--config", str(tmp_path / "extract.toml"),
         "--as-of", "2026-11-04T12:00:00Z", "run"],
        env={**os.environ, "MATOMO_TOKEN": server.token},
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2, warnings
    assert sum("FooBarModule.getReport" in line and "not enabled" in line for line in warnings) == 1
    assert sum("CustomDimensions.getCustomDimension site" in line for line in warnings) == 1
    assert "2 warnings" in result.stderr
    ((rows, skipped),) = query(
        settings,
        "select count(*), count(*) filter (where method = 'FooBarModule.getReport') "
        "from raw.matomo_report_rows",
    )
    assert rows > 0
    assert skipped == 0


def test_reports_can_be_turned_off(tmp_path: Path, demo_server: StartServer) -> None:
    server = demo_server(days=2, sites=1, visits_per_day=10)
    settings = configure(tmp_path, server.url, server.token)
    settings = dataclasses.replace(
        settings, reports=dataclasses.replace(settings.reports, enabled=False)
    )
    result = extract(settings, dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC))
    assert result.record.status == "ok"
    assert result.totals.visits > 0
    assert result.reports.rows == 0
    assert query(settings, "select count(*) from raw.matomo_report_rows") == [(0,)]


def test_metadata_follows_matomo_goals_deleted_there_disappear(tmp_path: Path) -> None:
    with gzip.open(FIXTURES / "meta_examples.jsonl.gz", "rt", encoding="utf-8") as lines:
        site = next(
            json.loads(entry["body"])
            for entry in map(json.loads, lines)
            if entry["file"] == "meta/SitesManager.getSiteFromId_site1.json"
        )
    goals = [{"idgoal": "1", "name": "Signup"}, {"idgoal": "2", "name": "Contact"}]

    def answer(body: Any) -> Callable[[dict[str, str]], tuple[int, bytes]]:
        return lambda form: (200, json.dumps(body() if callable(body) else body).encode())

    answers = {
        "API.getMatomoVersion": answer({"value": "5.0.2"}),
        "SitesManager.getSiteFromId": answer(site),
        "Goals.getGoals": answer(lambda: goals),
    }
    with StubMatomo(answers) as matomo:
        settings = configure(tmp_path, matomo.url, "any-token", sites=[1])
        as_of = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
        extract(settings, as_of)
        first = query(settings, "select goal_id from raw.matomo_goals order by 1")
        goals.pop()  # goal 2 deleted in Matomo
        extract(settings, as_of)
    assert first == [(1,), (2,)]
    assert query(settings, "select goal_id from raw.matomo_goals") == [(1,)]
    assert query(settings, "select version from raw.matomo_instance") == [("5.0.2",)]
