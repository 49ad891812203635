"""Matomo reports: any `Module.method` per site and period, fetched in bulk, landed as rows.

Each sub-request asks one report for a run of consecutive periods (`period=day&date=A,B`), so the
answer is Matomo's map keyed by period label; several sub-requests travel in one
`API.getBulkRequest`. Every period pulled is one slice `(site, method, params_key, period, date)`
whose rows replace the slice's previous rows, also when it now has none. A report Matomo refuses
(plugin disabled, unknown method, missing parameter) is skipped for that site with one warning per
method and run; a refused token still fails the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson

from extract.client import MatomoClient
from extract.config import ReportSpec
from extract.errors import ExtractError, Interrupted, MatomoAuthError, MatomoRefusedError
from extract.metadata import SiteMetadata, land_rows
from extract.warehouse import REPORT_ROWS, Warehouse

log = logging.getLogger(__name__)

BULK_METHOD = "API.getBulkRequest"
# Bounded answers: one bulk holds at most this many sub-requests of at most this many periods
# each, so a bulk answer stays a few MB even for page-URL tables (Matomo caps those at archiving).
REQUESTS_PER_BULK = 10
PERIODS_PER_REQUEST = 7
# What every sub-request says, whatever the report: raw numbers, every row.
FIXED_PARAMS = {"format_metrics": "0", "filter_limit": "-1"}
SLICE_COLUMNS = ["site_id", "method", "params_key", "period", "date"]
PATH_SEPARATOR = " > "

# (method, params, what the site needs for the report to have rows)
DEFAULT_REPORTS: tuple[tuple[str, dict[str, str], str | None], ...] = (
    ("VisitsSummary.get", {}, None),
    ("VisitFrequency.get", {}, None),
    ("Actions.get", {}, None),
    ("Actions.getPageUrls", {"flat": "1"}, None),
    ("Actions.getPageTitles", {"flat": "1"}, None),
    ("Actions.getEntryPageUrls", {"flat": "1"}, None),
    ("Actions.getExitPageUrls", {"flat": "1"}, None),
    ("Actions.getDownloads", {"flat": "1"}, None),
    ("Actions.getOutlinks", {"flat": "1"}, None),
    ("Actions.getSiteSearchKeywords", {}, "site_search"),
    ("Actions.getSiteSearchNoResultKeywords", {}, "site_search"),
    ("Actions.getSiteSearchCategories", {}, "site_search"),
    ("Referrers.getReferrerType", {}, None),
    ("Referrers.getAll", {}, None),
    ("Referrers.getSearchEngines", {}, None),
    ("Referrers.getKeywords", {}, None),
    ("Referrers.getWebsites", {}, None),
    ("Referrers.getSocials", {}, None),
    ("Referrers.getCampaigns", {}, None),
    ("Goals.get", {}, None),
    ("Goals.get", {"idGoal": "ecommerceOrder"}, "ecommerce"),
    ("Goals.get", {"idGoal": "ecommerceAbandonedCart"}, "ecommerce"),
    ("Goals.getItemsSku", {}, "ecommerce"),
    ("Goals.getItemsName", {}, "ecommerce"),
    ("Goals.getItemsCategory", {}, "ecommerce"),
    ("Events.getCategory", {}, None),
    ("Events.getAction", {}, None),
    ("Events.getName", {}, None),
    ("Contents.getContentNames", {}, None),
    ("Contents.getContentPieces", {}, None),
    ("DevicesDetection.getType", {}, None),
    ("DevicesDetection.getBrowsers", {}, None),
    ("DevicesDetection.getOsVersions", {}, None),
    ("UserCountry.getCountry", {}, None),
    ("UserCountry.getCity", {}, None),
    ("UserLanguage.getLanguage", {}, None),
    ("UserLanguage.getLanguageCode", {}, None),
    ("VisitTime.getVisitInformationPerLocalTime", {}, None),
    ("VisitTime.getVisitInformationPerServerTime", {}, None),
    ("Resolution.getResolution", {}, None),
    ("UserId.getUsers", {}, None),
)

# Keys that are text even when they look like numbers (a visitor id can be all digits).
_TEXT_KEYS = frozenset({"label", "segment", "idvisitor", "url", "logo", "subtable"})
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


# ------------------------------------------------------------------------- periods


@dataclass(frozen=True, order=True)
class Period:
    kind: str  # day, week, month, year, range
    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        """Matomo's label of the period (the key of a multi-period answer)."""
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start.isoformat()},{self.end.isoformat()}"


def period_of(kind: str, day: dt.date) -> Period:
    """The day/week (Monday first)/month/year period containing `day`."""
    if kind == "week":
        start = day - dt.timedelta(days=day.weekday())
        return Period(kind, start, start + dt.timedelta(days=6))
    if kind == "month":
        start = day.replace(day=1)
        return Period(kind, start, (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(1))
    if kind == "year":
        return Period(kind, dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))
    return Period("day", day, day)


def report_periods(kind: str, days: Iterable[dt.date]) -> list[Period]:
    """The periods to pull for `days`: each one containing a day (range: one spanning them)."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    if kind == "range":
        return [Period("range", wanted[0], wanted[-1])]
    return sorted({period_of(kind, day) for day in wanted})


def report_days(
    run_days: Iterable[dt.date], today: dt.date, first_day: dt.date, lookback_days: int
) -> set[dt.date]:
    """Closed local days whose reports this run pulls: the days its visit windows cover, plus
    the trailing `lookback_days` (Matomo re-archives recent days; their numbers still change).
    Never today: its archive is rebuilt hours later and would land numbers known to be low."""
    trailing = (today - dt.timedelta(days=n) for n in range(1, lookback_days + 1))
    return {day for day in (*run_days, *trailing) if first_day <= day < today}


# ------------------------------------------------------------------------- what to request


@dataclass(frozen=True)
class Report:
    method: str
    params_items: tuple[tuple[str, str], ...]  # the extra parameters, sorted (hashable)

    @classmethod
    def of(cls, method: str, params: Mapping[str, str | int]) -> Report:
        return cls(method, tuple(sorted((key, str(value)) for key, value in params.items())))

    @property
    def params(self) -> dict[str, str]:
        return dict(self.params_items)

    @property
    def params_key(self) -> str:
        """Canonical sorted `k=v&…` of the extra parameters, '' if none."""
        return "&".join(f"{key}={value}" for key, value in self.params_items)


def site_reports(metadata: SiteMetadata, extra: Sequence[ReportSpec]) -> list[Report]:
    """The default set for this site (per goal, per custom dimension, ecommerce and site-search
    reports where the site has them), then the user's `[[reports.extra]]`."""
    site = metadata.site
    has = {"ecommerce": site.ecommerce, "site_search": site.site_search}
    reports = [
        Report.of(method, params)
        for method, params, needs in DEFAULT_REPORTS
        if needs is None or has[needs]
    ]
    reports += [Report.of("Goals.get", {"idGoal": goal}) for goal in metadata.goal_ids]
    reports += [
        Report.of("CustomDimensions.getCustomDimension", {"idDimension": dimension})
        for dimension in metadata.dimension_ids
    ]
    reports += [Report.of(spec.method, spec.params) for spec in extra]
    return list(dict.fromkeys(reports))  # an extra equal to a default is pulled once


@dataclass(frozen=True)
class SubRequest:
    """One report of one site over consecutive periods of one kind."""

    site_id: int
    report: Report
    periods: tuple[Period, ...]

    @property
    def query(self) -> dict[str, str]:
        first, last = self.periods[0], self.periods[-1]
        # A two-date `date` asks for every period from the first to the last, keyed by label;
        # for a range it is the range itself.
        date = last.label if first.kind == "range" else f"{first.start},{last.start}"
        return {
            **self.report.params,
            "idSite": str(self.site_id),
            "period": first.kind,
            "date": date,
            **FIXED_PARAMS,
        }

    def __str__(self) -> str:
        params = f" {self.report.params_key}" if self.report.params_items else ""
        return f"{self.report.method}{params} site {self.site_id} {self.query['date']}"


def sub_requests(
    site_id: int, reports: Iterable[Report], periods: Sequence[Period]
) -> list[SubRequest]:
    """Every report over `periods`, in runs of at most PERIODS_PER_REQUEST consecutive ones."""
    runs: list[list[Period]] = []
    for period in periods:
        if runs and len(runs[-1]) < PERIODS_PER_REQUEST and _follows(runs[-1][-1], period):
            runs[-1].append(period)
        else:
            runs.append([period])
    return [SubRequest(site_id, report, tuple(run)) for report in reports for run in runs]


def _follows(previous: Period, period: Period) -> bool:
    return period.kind != "range" and period.start == previous.end + dt.timedelta(days=1)


# ------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Row:
    index: int
    path: str  # labels from the top-level row down, joined with PATH_SEPARATOR; '' single-row
    label: str | None
    metrics: dict[str, Any]
    row: dict[str, Any]  # as sent, minus an expanded `subtable` (its rows are rows of their own)


def number(value: Any) -> int | float | None:
    """A metric value as a number, whatever Matomo sent (`19`, `"19"`, `"0.5320"`); None if it
    is not one (text, booleans such as `max_event_value: false`, null)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        parsed = float(value)
        return int(value) if value.lstrip("-").isdigit() else parsed
    return None


def metrics_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every numeric value of a row (nested objects such as `goals` kept nested), as numbers."""
    metrics: dict[str, Any] = {}
    for key, value in row.items():
        if key in _TEXT_KEYS:
            continue
        if isinstance(value, dict):
            nested = metrics_of(value)
            if nested:
                metrics[key] = nested
        elif (parsed := number(value)) is not None:
            metrics[key] = parsed
    return metrics


def period_bodies(body: Any, request: SubRequest) -> Iterator[tuple[Period, Any]]:
    """Each requested period with its part of the answer (a range is one table, unkeyed)."""
    if request.periods[0].kind == "range":
        yield request.periods[0], body
        return
    if body == []:
        body = {}  # nothing archived in any of the periods, said the short way
    if not isinstance(body, dict):
        raise ExtractError(
            f"Matomo answered {request} with {type(body).__name__} instead of an object keyed "
            "by period"
        )
    for period in request.periods:
        # A period Matomo left out has no archive, exactly like one it answers with `[]`.
        yield period, body.get(period.label, [])


def rows_of(body: Any) -> Iterator[Row]:
    """The rows of one period's answer: a table (list of rows, `subtable`s of `expanded=1`
    walked depth first), a single-row report (object), or nothing (`[]`, `{}`)."""
    if isinstance(body, dict):
        if body:
            yield Row(0, "", None, metrics_of(body), body)
        return
    if not isinstance(body, list):
        raise ExtractError(f"Matomo answered a report with {type(body).__name__}: {body!r:.80}")
    seen: dict[str, int] = {}
    for index, (path, row) in enumerate(_walk(body, "")):
        # Paths are the slice's row key; a label Matomo repeats gets a counter, in order.
        seen[path] = seen.get(path, 0) + 1
        if seen[path] > 1:
            path = f"{path} #{seen[path]}"
        label = row.get("label")
        as_sent = {key: value for key, value in row.items() if key != "subtable"}
        yield Row(index, path, None if label is None else str(label), metrics_of(row), as_sent)


def _walk(rows: list[Any], parent: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for row in rows:
        if not isinstance(row, dict):
            continue
        label = str(row.get("label", ""))
        path = f"{parent}{PATH_SEPARATOR}{label}" if parent else label
        yield path, row
        subtable = row.get("subtable")
        if isinstance(subtable, list):
            yield from _walk(subtable, path)


# ------------------------------------------------------------------------- loading


@dataclass
class ReportTotals:
    requests: int = 0  # sub-requests answered
    slices: int = 0
    rows: int = 0
    skipped: int = 0  # sub-requests not made or refused: their report is skipped for the site
    warnings: int = 0
    refused: set[tuple[int, Report]] = field(default_factory=set)  # (site, report)
    warned: set[str] = field(default_factory=set)  # methods warned about this run


def load_reports(
    client: MatomoClient,
    warehouse: Warehouse,
    requests: Iterable[SubRequest],
    *,
    run_id: str,
    totals: ReportTotals,
) -> None:
    """Fetch the sub-requests in bulks and land each bulk's slices in one replace."""
    pending = iter(requests)
    while batch := _next_batch(pending, totals):
        if client.cancelled:
            raise Interrupted("stopped")
        extracted_at = dt.datetime.now(dt.UTC)
        parts = list(_periods_answered(_fetch(client, batch, totals)))
        landed = land_rows(
            warehouse,
            REPORT_ROWS.name,
            SLICE_COLUMNS,
            _landing_rows(parts),
            run_id,
            extracted_at,
            scopes=[key for key, *_ in parts],
        )
        totals.rows += landed
        totals.slices += len(parts)
        log.info("reports: %d slice(s), %d row(s) landed", len(parts), landed)


def _next_batch(pending: Iterator[SubRequest], totals: ReportTotals) -> list[SubRequest]:
    """Up to REQUESTS_PER_BULK sub-requests; a report refused earlier in the run for the same
    site is not asked again (taken lazily, so refusals of the previous bulk count)."""
    batch: list[SubRequest] = []
    for request in pending:
        if (request.site_id, request.report) in totals.refused:
            totals.skipped += 1
            continue
        batch.append(request)
        if len(batch) == REQUESTS_PER_BULK:
            break
    return batch


def _fetch(
    client: MatomoClient, batch: list[SubRequest], totals: ReportTotals
) -> list[tuple[SubRequest, Any]]:
    """Each sub-request with its answer; refused ones are left out (and remembered)."""
    urls = {
        f"urls[{n}]": urlencode({"method": request.report.method, **request.query})
        for n, request in enumerate(batch)
    }
    answers = client.call(BULK_METHOD, urls, what=f"{len(batch)} report(s)")
    if not isinstance(answers, list) or len(answers) != len(batch):
        raise ExtractError(
            f"Matomo answered {BULK_METHOD} with {type(answers).__name__} instead of a list of "
            f"{len(batch)} answers"
        )
    answered = []
    for request, answer in zip(batch, answers, strict=True):
        if isinstance(answer, dict) and answer.get("result") == "error":
            # Asked again on its own, so the client classifies the error and retries it if
            # transient; a permanent refusal skips the report.
            answer = _single(client, request, totals)
            if answer is None:
                continue
        totals.requests += 1
        answered.append((request, answer))
    return answered


def _single(client: MatomoClient, request: SubRequest, totals: ReportTotals) -> Any:
    method = request.report.method
    try:
        return client.call(method, request.query, what=f"site {request.site_id}")
    except MatomoAuthError:
        raise
    except MatomoRefusedError as exc:
        totals.refused.add((request.site_id, request.report))
        totals.skipped += 1
        if method in totals.warned:
            log.info("skipping report %s: %s", request, exc.message or exc)
        else:
            totals.warned.add(method)
            totals.warnings += 1
            log.warning(
                "skipping report %s (and this method wherever Matomo refuses it this run): %s",
                request,
                exc.message or exc,
            )
        return None


_Part = tuple[dict[str, Any], Period, Any, Report]


def _periods_answered(answers: list[tuple[SubRequest, Any]]) -> Iterator[_Part]:
    """(slice key, period, that period's answer, report) of every answered period."""
    for request, answer in answers:
        report = request.report
        for period, body in period_bodies(answer, request):
            key = {
                "site_id": request.site_id,
                "method": report.method,
                "params_key": report.params_key,
                "period": period.kind,
                "date": period.start.isoformat(),
            }
            yield key, period, body, report


def _landing_rows(parts: list[_Part]) -> Iterator[dict[str, Any]]:
    for key, period, body, report in parts:
        params = orjson.dumps(report.params).decode()
        for row in rows_of(body):
            yield {
                **key,
                "params": params,
                "date_label": period.label,
                "row_index": row.index,
                "row_path": row.path,
                "label": row.label,
                "metrics": orjson.dumps(row.metrics).decode(),
                "row": orjson.dumps(row.row).decode(),
            }
