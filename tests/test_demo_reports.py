"""Report numbers computed from Live visits, checked against a real Matomo 5.0.2's own reports.

The captured Live pages (63 site-days) are the input; the captured report bodies are the truth.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from extract.demo.dataset import DatasetError
from extract.demo.generator import zone
from extract.demo.reports import (
    CustomDimension,
    Goal,
    ReportError,
    SiteInfo,
    compute_report,
    period_days,
    php_round,
    resolve_periods,
)
from extract.demo.synthetic import SyntheticDataset

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"
CAPTURE_TODAY = dt.date(2026, 11, 22)  # the capture ran on 2026-11-22
SITES = {
    1: SiteInfo(
        1,
        "UTC",
        True,
        (
            Goal(1, "Newsletter Signup"),
            Goal(2, "Visited Contact Page"),
            Goal(3, "Account Registration"),
            Goal(4, "Size Guide Download"),
        ),
        (CustomDimension(1, "visit", "Customer Tier"), CustomDimension(2, "action", "Page Type")),
    ),
    2: SiteInfo(
        2,
        "America/New_York",
        False,
        (Goal(1, "Subscribed"),),
        (CustomDimension(1, "action", "Author"),),
    ),
    3: SiteInfo(3, "Europe/Berlin", False, (Goal(1, "Kontaktformular"),), (), "€"),
}
EXACT = ("VisitsSummary.get", "Actions.get", "Goals.get", "Referrers.getReferrerType")


def bundle(name: str) -> Iterator[dict[str, Any]]:
    with gzip.open(FIXTURES / f"{name}.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


@cache
def captured_visits() -> dict[int, dict[dt.date, list[dict[str, Any]]]]:
    """The captured Live day pages, per site and local day of the last action."""
    days: dict[int, dict[dt.date, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for entry in bundle("live"):
        if not re.match(r"live/site\d_\d{4}-\d\d-\d\d_offset", entry["file"]):
            continue
        for visit in json.loads(entry["body"]):
            site = visit["idSite"]
            local = dt.datetime.fromtimestamp(
                visit["lastActionTimestamp"], zone(SITES[site].timezone)
            )
            days[site][local.date()].append(visit)
    return days


@cache
def captured_reports() -> list[dict[str, Any]]:
    return list(bundle("reports"))


def compute_captured(entry: dict[str, Any]) -> Any:
    """The report of a captured request, computed from the captured visits it covers."""
    params = {k: str(v) for k, v in entry["params"].items()}
    site = int(params.pop("idSite"))
    method, period, date = params.pop("method"), params.pop("period"), params.pop("date")
    for key in ("module", "format"):
        params.pop(key)
    by_day = captured_visits()[site]
    visits = [v for d in period_days(period, date, CAPTURE_TODAY) for v in by_day.get(d, [])]
    return compute_report(method, visits, SITES[site], period, date, params, CAPTURE_TODAY)


def exact_cases() -> list[Any]:
    return [
        pytest.param(entry, id=entry["file"].removeprefix("reports/"))
        for entry in captured_reports()
        if entry["params"]["method"] in EXACT
    ]


def test_captured_visits_cover_all_63_site_days() -> None:
    days = captured_visits()
    assert sorted(days) == [1, 2, 3]
    assert all(len(days[site]) == 21 for site in days)
    totals = {site: sum(len(v) for v in days[site].values()) for site in days}
    assert totals == {1: 2568, 2: 1192, 3: 462}


@pytest.mark.parametrize("entry", exact_cases())
def test_exact_reports_equal_real_matomo(entry: dict[str, Any]) -> None:
    expected = json.loads(entry["body"])
    got = compute_captured(entry)
    assert got == expected
    if isinstance(expected, list):
        assert [r["label"] for r in got] == [r["label"] for r in expected]
    else:
        assert list(got) == list(expected)  # key order too: extractors may store rows as sent


def test_exact_cases_cover_every_period_kind() -> None:
    kinds = {(e["params"]["method"], e["params"]["period"]) for e in captured_reports()}
    for method in EXACT:
        assert {p for m, p in kinds if m == method} == {"day", "week", "month", "range"}
    variants = {
        e["params"].get("idGoal")
        for e in captured_reports()
        if e["params"]["method"] == "Goals.get"
    }
    assert {None, 1, 2, 3, 4, "ecommerceOrder", "ecommerceAbandonedCart"} <= variants


# What the Live data cannot carry (see reports.INEXACT): page-performance timings, per-page goal
# attribution, subtable ids, and the string/number mix of SQL-aggregated rows.
_UNREPRODUCIBLE = re.compile(
    r"^(idsubdatatable|goals|nb_hits_with_time_\w+|(min|max|sum|avg)_time_(network|server|transfer|"
    r"dom_processing|dom_completion|on_load)|avg_page_load_time)$"
)
# Reports that match real Matomo once the columns above are set aside.
MATCHING = (
    "VisitFrequency.get",
    "Referrers.getAll",
    "Referrers.getSearchEngines",
    "Referrers.getKeywords",
    "Referrers.getWebsites",
    "Referrers.getSocials",
    "Referrers.getCampaigns",
    "UserCountry.getCountry",
    "UserCountry.getCity",
    "DevicesDetection.getType",
    "DevicesDetection.getBrowsers",
    "DevicesDetection.getOsVersions",
    "Resolution.getResolution",
    "UserLanguage.getLanguage",
    "VisitTime.getVisitInformationPerLocalTime",
    "VisitTime.getVisitInformationPerServerTime",
    "Events.getCategory",
    "Events.getAction",
    "UserId.getUsers",
    "Actions.getDownloads",
    "Actions.getOutlinks",
    "Actions.getSiteSearchKeywords",
    "Actions.getSiteSearchNoResultKeywords",
    "Actions.getSiteSearchCategories",
)


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if not _UNREPRODUCIBLE.match(k)}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(float(value), 6)  # float noise of these sums is not modelled
    return value


# Matomo relabels UTC hours into site hours with one offset per archive; around the 2026-11-01
# DST change its choice is not derivable from the data (reports.INEXACT["server time"]).
DST_GAPS = {
    "reports/site2/day_2026-11-01/VisitTime.getVisitInformationPerServerTime.json",
    "reports/site2/range_2026-11-01_2026-11-21/VisitTime.getVisitInformationPerServerTime.json",
}


def matching_cases() -> list[Any]:
    return [
        pytest.param(entry, id=entry["file"].removeprefix("reports/"))
        for entry in captured_reports()
        if entry["params"]["method"] in MATCHING and entry["file"] not in DST_GAPS
    ]


@pytest.mark.parametrize("entry", matching_cases())
def test_table_reports_match_real_matomo(entry: dict[str, Any]) -> None:
    assert _comparable(compute_captured(entry)) == _comparable(json.loads(entry["body"]))


def test_day_rows_keep_sql_strings_like_matomo() -> None:
    entry = next(
        e
        for e in captured_reports()
        if e["file"] == "reports/site1/day_2026-11-05/DevicesDetection.getType.json"
    )
    assert compute_captured(entry) == json.loads(entry["body"])


def test_page_reports_count_pageviews_like_actions_get() -> None:
    for entry in captured_reports():
        if entry["params"]["method"] != "Actions.getPageUrls" or entry["params"]["period"] != "day":
            continue
        summary = dict(entry, params={**entry["params"], "method": "Actions.get"})
        rows = compute_captured(entry)
        assert sum(int(r["nb_hits"]) for r in rows) == compute_captured(summary)["nb_pageviews"]


# ---------------------------------------------------------------- the synthetic dataset's reports


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return SyntheticDataset(days=9, visits_per_day=40)


@pytest.fixture(scope="module")
def now(dataset: SyntheticDataset) -> int:
    return dataset.end_timestamp() + 5 * 3600


def report(
    dataset: SyntheticDataset,
    now: int,
    method: str,
    site: int,
    period: str,
    date: str,
    **extra: str,
) -> Any:
    return dataset.call(method, {"idSite": str(site), "period": period, "date": date, **extra}, now)


@pytest.mark.parametrize("site", [1, 2, 3])
def test_synthetic_summary_counts_the_live_visits(
    dataset: SyntheticDataset, now: int, site: int
) -> None:
    for offset in range(dataset.days):
        day = dataset.first_day() + dt.timedelta(offset)
        visits = dataset.visits_for_day(site, day, now)
        summary = report(
            dataset, now, "VisitsSummary.get", site, "day", day.isoformat(), format_metrics="0"
        )
        assert summary["nb_visits"] == len(visits)
        assert summary["nb_actions"] == sum(v["actions"] for v in visits)
        assert summary["bounce_count"] == sum(1 for v in visits if v["actions"] <= 1)
        assert summary["nb_uniq_visitors"] == len({v["visitorId"] for v in visits})
        assert summary["bounce_rate"] == php_round(summary["bounce_count"] / len(visits), 2)
        actions = [a for v in visits for a in v["actionDetails"]]
        pages = report(dataset, now, "Actions.get", site, "day", day.isoformat())
        assert pages["nb_pageviews"] == sum(1 for a in actions if a["type"] == "action")
        assert pages["nb_searches"] == sum(1 for a in actions if a["type"] == "search")


def test_synthetic_orders_and_goals_add_up(dataset: SyntheticDataset, now: int) -> None:
    day = dataset.first_day() + dt.timedelta(2)
    actions = [a for v in dataset.visits_for_day(1, day, now) for a in v["actionDetails"]]
    orders = [a for a in actions if a["type"] == "ecommerceOrder"]
    got = report(dataset, now, "Goals.get", 1, "day", day.isoformat(), idGoal="ecommerceOrder")
    assert got["nb_conversions"] == len(orders)
    assert got["revenue"] == pytest.approx(sum(a["revenue"] for a in orders))
    goals = [a for a in actions if a["type"] == "goal"]
    overall = report(dataset, now, "Goals.get", 1, "day", day.isoformat())
    assert overall["nb_conversions"] == len(goals) + len(orders)


def test_weeks_sum_days_and_ranges_drop_uniques(dataset: SyntheticDataset, now: int) -> None:
    week = report(dataset, now, "VisitsSummary.get", 1, "week", "2026-11-04")
    days = report(dataset, now, "VisitsSummary.get", 1, "day", "2026-11-02,2026-11-08")
    assert list(days) == [f"2026-11-0{d}" for d in range(2, 9)]
    assert week["nb_visits"] == sum(d["nb_visits"] for d in days.values())
    assert week["max_actions"] == max(d["max_actions"] for d in days.values())
    assert week["nb_uniq_visitors"] <= sum(d["nb_uniq_visitors"] for d in days.values())
    ranged = report(dataset, now, "VisitsSummary.get", 1, "range", "2026-11-02,2026-11-08")
    assert "nb_uniq_visitors" not in ranged
    assert "nb_users" not in ranged
    assert ranged["nb_visits"] == week["nb_visits"]
    rows = report(dataset, now, "Referrers.getReferrerType", 1, "range", "2026-11-02,2026-11-08")
    assert sum(r["nb_visits"] for r in rows) == week["nb_visits"]
    assert all("sum_daily_nb_uniq_visitors" in r for r in rows)


def test_empty_periods_have_matomos_shapes(dataset: SyntheticDataset, now: int) -> None:
    before = report(dataset, now, "VisitsSummary.get", 1, "day", "2026-10-15")
    assert before == {
        "nb_uniq_visitors": 0,
        "nb_users": 0,
        "nb_visits": 0,
        "nb_actions": 0,
        "nb_visits_converted": 0,
        "bounce_count": 0,
        "sum_visit_length": 0,
        "max_actions": 0,
        "bounce_rate": "0%",
        "nb_actions_per_visit": 0,
        "avg_time_on_site": 0,
    }
    assert report(dataset, now, "Referrers.getReferrerType", 1, "day", "2026-10-15") == []
    many = report(dataset, now, "VisitsSummary.get", 1, "day", "2026-10-31,2026-11-01")
    assert many["2026-10-31"] == []
    assert many["2026-11-01"]["nb_visits"] > 0


def test_multi_site_and_magic_dates(dataset: SyntheticDataset, now: int) -> None:
    body = dataset.call(
        "VisitsSummary.get", {"idSite": "all", "period": "day", "date": "yesterday"}, now
    )
    assert list(body) == ["1", "2", "3"]
    last7 = dataset.call("Actions.get", {"idSite": "2", "period": "day", "date": "last7"}, now)
    assert len(last7) == 7


def test_format_metrics_and_filters(dataset: SyntheticDataset, now: int) -> None:
    raw = report(
        dataset, now, "VisitsSummary.get", 1, "range", "2026-11-01,2026-11-09", format_metrics="0"
    )
    pretty = report(
        dataset, now, "VisitsSummary.get", 1, "range", "2026-11-01,2026-11-09", format_metrics="1"
    )
    default = report(dataset, now, "VisitsSummary.get", 1, "range", "2026-11-01,2026-11-09")
    assert isinstance(raw["bounce_rate"], float)
    assert default["bounce_rate"].endswith("%")
    assert pretty["avg_time_on_site"].endswith("s")
    assert isinstance(default["avg_time_on_site"], int)
    rows = report(
        dataset, now, "Actions.getPageUrls", 1, "range", "2026-11-01,2026-11-09", flat="1"
    )
    limited = report(
        dataset,
        now,
        "Actions.getPageUrls",
        1,
        "range",
        "2026-11-01,2026-11-09",
        flat="1",
        filter_limit="5",
    )
    assert limited == rows[:5]
    assert len(rows) > 5
    shown = report(
        dataset, now, "Referrers.getReferrerType", 1, "day", "2026-11-05", showColumns="nb_visits"
    )
    assert all(
        set(r) <= {"label", "nb_visits", "segment", "referrer_type", "idsubdatatable"}
        for r in shown
    )


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        (
            "VisitsSummary.getFooBar",
            {"idSite": "1", "period": "day", "date": "2026-11-05"},
            "unknown_method",
        ),
        (
            "FooBarModule.get",
            {"idSite": "1", "period": "day", "date": "2026-11-05"},
            "unknown_module",
        ),
        (
            "VisitsSummary.get",
            {"idSite": "99", "period": "day", "date": "2026-11-05"},
            "idsite_does_not_exist",
        ),
        (
            "VisitsSummary.get",
            {"idSite": "1", "period": "fortnight", "date": "2026-11-05"},
            "invalid_period",
        ),
        (
            "VisitsSummary.get",
            {"idSite": "1", "period": "day", "date": "2026-13-45"},
            "malformed_date",
        ),
        (
            "VisitsSummary.get",
            {"idSite": "1", "period": "range", "date": "2026-11-21"},
            "malformed_range",
        ),
        ("VisitsSummary.get", {"idSite": "1", "period": "day"}, "missing_date"),
        (
            "VisitsSummary.get",
            {"idSite": "1", "period": "day", "date": "2026-11-05", "segment": "notASegment==1"},
            "invalid_segment",
        ),
        (
            "CustomDimensions.getCustomDimension",
            {"idSite": "1", "period": "day", "date": "2026-11-05", "idDimension": "9"},
            "customdimension_unknown_id",
        ),
    ],
)
def test_errors_carry_matomos_exact_messages(
    dataset: SyntheticDataset, now: int, method: str, params: dict[str, str], message: str
) -> None:
    captured = {e["file"]: e for e in bundle("errors")}[f"errors/{message}.json"]
    with pytest.raises(DatasetError) as raised:
        dataset.call(method, params, now)
    assert str(raised.value) == captured["body_json"]["message"]


def test_unknown_goal_answers_zeros(dataset: SyntheticDataset, now: int) -> None:
    captured = {e["file"]: e for e in bundle("errors")}["errors/goals_unknown_idgoal.json"]
    got = report(dataset, now, "Goals.get", 1, "day", "2026-11-05", idGoal="42")
    assert got == json.loads(captured["body"])


def test_periods_resolve_like_matomo() -> None:
    today = dt.date(2026, 11, 22)
    periods, multi = resolve_periods("range", "2026-11-01,2026-11-21", today)
    assert not multi
    parts = [(p.kind, p.label) for p in periods[0].subperiods()]
    assert parts[:3] == [
        ("day", "2026-11-01"),
        ("week", "2026-11-02,2026-11-08"),
        ("week", "2026-11-09,2026-11-15"),
    ]
    assert parts[3:] == [("day", f"2026-11-{d}") for d in range(16, 22)]
    weeks, multi = resolve_periods("week", "last2", today)
    assert multi
    assert [p.label for p in weeks] == ["2026-11-09,2026-11-15", "2026-11-16,2026-11-22"]
    with pytest.raises(ReportError):
        resolve_periods("day", "not-a-date", today)


def test_php_rounding_is_half_away_from_zero() -> None:
    assert php_round(0.125, 2) == 0.13
    assert php_round(-0.125, 2) == -0.13
    assert php_round(2.5) == 3.0
    assert php_round(1.955, 2) == 1.96
