"""End to end: the vendored Matomo 5.0.2 captures through the real extractor and `dbt build`;
the daily metrics mart must equal Matomo's own day reports exactly, for all 63 site-days.

The expected numbers are read straight from tests/fixtures/matomo-5/reports.jsonl.gz, so this
does not depend on how the extractor lands report rows or how the models compare them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from dbt_pipeline import CAPTURE_TIME, FIXTURES, Pipeline

from extract.demo.server import DemoServer

pytestmark = pytest.mark.slow

# Matomo metric -> fct_site_daily_metrics column, per report (same names by design).
VISITS_SUMMARY = (
    "nb_visits", "nb_uniq_visitors", "nb_users", "nb_actions", "max_actions",
    "sum_visit_length", "bounce_count", "nb_visits_converted",
)
ACTIONS = (
    "nb_pageviews", "nb_uniq_pageviews", "nb_downloads", "nb_uniq_downloads",
    "nb_outlinks", "nb_uniq_outlinks", "nb_searches", "nb_keywords",
)
GOALS = ("nb_conversions", "revenue", "nb_visits_converted")
REFERRER_TYPE_COLUMNS = {
    1: "direct_visits", 2: "search_visits", 3: "website_visits",
    6: "campaign_visits", 7: "social_visits",
}
DST_DAY = (2, dt.date(2026, 11, 1))  # America/New_York falls back: a 25-hour day

SiteDay = tuple[int, dt.date]


def _captures(bundle: str) -> Iterator[dict[str, Any]]:
    with gzip.open(FIXTURES / f"{bundle}.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def _live_site_days() -> set[SiteDay]:
    """The site-days whose Live pages were captured: the days the warehouse must cover."""
    return {
        (int(c["params"]["idSite"]), dt.date.fromisoformat(c["params"]["date"]))
        for c in _captures("live")
        if c["file"].startswith("live/site") and c["params"].get("period") == "day"
    }


def _expected() -> dict[SiteDay, dict[str, Decimal]]:
    """Matomo's numbers per site-day, keyed by the mart's column names."""
    expected: dict[SiteDay, dict[str, Decimal]] = {}
    for capture in _captures("reports"):
        params = capture["params"]
        if params.get("period") != "day":
            continue
        key = (int(params["idSite"]), dt.date.fromisoformat(params["date"]))
        body = json.loads(capture["body"])
        metrics = expected.setdefault(key, {})
        method = params["method"]
        if method == "VisitsSummary.get":
            metrics.update({m: Decimal(str(body[m])) for m in VISITS_SUMMARY})
        elif method == "Actions.get":
            metrics.update({m: Decimal(str(body.get(m, 0))) for m in ACTIONS})
        elif method == "Goals.get" and "idGoal" not in params:
            metrics.update({f"goals.{m}": Decimal(str(body[m])) for m in GOALS})
        elif method == "Referrers.getReferrerType":
            for row in body:
                column = REFERRER_TYPE_COLUMNS[int(row["referrer_type"])]
                metrics[column] = Decimal(str(row["nb_visits"]))
    return expected


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    pipeline = Pipeline(tmp_path_factory.mktemp("reconciliation"))
    with DemoServer(replay=str(FIXTURES)) as server:
        pipeline.extract(server.url, server.token, CAPTURE_TIME)
    pipeline.dbt("build")
    return pipeline


def _marts(pipeline: Pipeline) -> dict[SiteDay, dict[str, Decimal]]:
    columns = (
        *VISITS_SUMMARY, *ACTIONS, "nb_conversions", "revenue",
        *REFERRER_TYPE_COLUMNS.values(),
    )
    with pipeline.connect() as con:
        rows = con.execute(
            f"select site_id, report_date, {', '.join(columns)} "
            "from marts.fct_site_daily_metrics"
        ).fetchall()
    marts = {}
    for site_id, day, *values in rows:
        metrics = {c: Decimal(str(v)) for c, v in zip(columns, values, strict=True)}
        # Goals.get's nb_visits_converted is VisitsSummary's visit-level count (same column).
        metrics["goals.nb_conversions"] = metrics.pop("nb_conversions")
        metrics["goals.revenue"] = metrics.pop("revenue").quantize(Decimal("0.01"))
        metrics["goals.nb_visits_converted"] = metrics["nb_visits_converted"]
        marts[(site_id, day)] = metrics
    return marts


def test_daily_metrics_equal_matomo_reports_for_every_site_day(built: Pipeline) -> None:
    expected = _expected()
    site_days = _live_site_days()
    assert len(site_days) == 63
    assert DST_DAY in site_days
    assert site_days <= expected.keys()

    marts = _marts(built)
    differences = []
    for site_day in sorted(site_days):
        wanted = expected[site_day]
        # Matomo omits the referrer types no visit had: those are 0 here.
        got = marts.get(site_day, {})
        for metric, value in wanted.items():
            if metric == "goals.revenue":
                value = value.quantize(Decimal("0.01"))
            if got.get(metric, Decimal(0)) != value:
                differences.append((site_day, metric, value, got.get(metric)))
        for column in REFERRER_TYPE_COLUMNS.values():
            if column not in wanted and got.get(column, Decimal(0)) != 0:
                differences.append((site_day, column, Decimal(0), got.get(column)))
    assert differences == []
    # Every metric of every report was compared, on every site-day.
    per_day = len(VISITS_SUMMARY) + len(ACTIONS) + len(GOALS)
    assert all(len(expected[sd]) >= per_day for sd in site_days)



def test_reconciliation_model_finds_no_mismatch_on_any_site_day(built: Pipeline) -> None:
    """rpt_matomo_reconciliation compares the report rows the extractor landed from the captures
    with the marts: every closed site-day, all four reports, not one difference."""
    with built.connect() as con:
        rows = con.execute(
            "select site_id, report_date, report_method, metric_name, is_comparable, is_match, "
            "matomo_value, warehouse_value from marts.rpt_matomo_reconciliation"
        ).fetchall()
    comparable = [row for row in rows if row[4]]
    assert {(site, day) for site, day, *_ in comparable} == _live_site_days()
    assert {method for _, _, method, *_ in comparable} == {
        "VisitsSummary.get", "Actions.get", "Goals.get", "Referrers.getReferrerType",
    }
    # the open day (Nov 22) has no report rows: nothing else is left uncompared
    assert len(comparable) == len(rows)
    mismatches = [row for row in comparable if not row[5]]
    assert mismatches == []
    # every metric of the model's checks was compared on every site-day with that report
    per_site_day: dict[SiteDay, set[str]] = {}
    for site, day, method, metric, *_ in comparable:
        per_site_day.setdefault((site, day), set()).add(f"{method}.{metric}")
    assert all(
        {"VisitsSummary.get.nb_visits", "Actions.get.nb_pageviews", "Goals.get.nb_conversions",
         "Referrers.getReferrerType.nb_visits"} <= metrics
        for metrics in per_site_day.values()
    )
