"""One extract run: sites and metadata -> planned windows -> visits -> reports; the run logged in
the warehouse."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from extract.client import MatomoClient
from extract.config import Settings
from extract.errors import ExtractError, Interrupted, WarehouseError
from extract.metadata import Site, SiteMetadata, fetch_sites, land_metadata
from extract.progress import RunProgress
from extract.ratelimit import RateLimiter, StopFlag
from extract.reports import (
    ReportTotals,
    SubRequest,
    load_reports,
    report_days,
    report_periods,
    site_reports,
    sub_requests,
)
from extract.state import RunRecord, new_run_id
from extract.visits import LoadTotals, load_windows
from extract.warehouse import Warehouse, make_warehouse
from extract.windows import DayWindow, local_date, plan_windows, range_windows, site_zone

log = logging.getLogger(__name__)

# An unreachable or mistyped URL should fail in seconds, not after the whole retry budget.
FIRST_CONTACT_BUDGET = 30.0


@dataclass(frozen=True)
class RunRequest:
    command: str  # "run" or "backfill"
    as_of: dt.datetime
    backfill: tuple[dt.date, dt.date] | None = None
    site_ids: tuple[int, ...] | None = None  # overrides [matomo] sites


@dataclass(frozen=True)
class RunResult:
    record: RunRecord
    totals: LoadTotals
    reports: ReportTotals
    sites: int
    requests: int
    retries: int
    seconds: float


def make_client(settings: Settings, stop: StopFlag | None = None) -> MatomoClient:
    matomo = settings.matomo
    limiter = RateLimiter(matomo.requests_per_minute, matomo.concurrency, stop)
    return MatomoClient(
        matomo.url,
        matomo.token,
        limiter,
        timeout=matomo.timeout_seconds,
        retry_budget=matomo.retry_budget_seconds,
        pool_size=matomo.concurrency,
    )


def plan(
    settings: Settings, request: RunRequest, warehouse: Warehouse, sites: list[Site]
) -> list[DayWindow]:
    """Every window to fetch this run, oldest day first across sites."""
    matomo = settings.matomo
    as_of = int(request.as_of.timestamp())
    finality = matomo.finality_minutes * 60
    windows: list[DayWindow] = []
    for site in sites:
        tz = site_zone(site.timezone)
        if request.backfill is not None:
            first, last = request.backfill
            windows += range_windows(site.site_id, tz, first, last, as_of, finality)
            continue
        complete = warehouse.completed_windows(site.site_id)
        windows += plan_windows(
            site.site_id,
            tz,
            _first_day(settings, site, as_of),
            as_of,
            finality,
            matomo.lookback_days,
            complete,
        )
    return sorted(windows, key=lambda window: (window.day, window.site_id))


def plan_reports(
    settings: Settings,
    request: RunRequest,
    sites: list[SiteMetadata],
    windows: list[DayWindow],
) -> list[SubRequest]:
    """Every report sub-request of this run: per site, the closed days its windows cover plus
    the trailing `[reports] lookback_days` (a backfill: just its days), as configured periods."""
    as_of = int(request.as_of.timestamp())
    config = settings.reports
    requests: list[SubRequest] = []
    for item in sites:
        site = item.site
        today = local_date(as_of, site_zone(site.timezone))
        run_days = [window.day for window in windows if window.site_id == site.site_id]
        if request.backfill is not None:
            days = report_days(run_days, today, request.backfill[0], 0)
        else:
            first_day = _first_day(settings, site, as_of)
            days = report_days(run_days, today, first_day, config.lookback_days)
        periods = report_periods(config.period, days)
        requests += sub_requests(site.site_id, site_reports(item, config.extra), periods)
    return requests


def _first_day(settings: Settings, site: Site, as_of: int) -> dt.date:
    """First local day to load: start_date, else the site's creation day (else today)."""
    tz = site_zone(site.timezone)
    created = site.created_at
    return settings.matomo.start_date or (
        local_date(int(created.timestamp()), tz) if created else local_date(as_of, tz)
    )


def execute(
    settings: Settings, request: RunRequest, progress: RunProgress, stop: StopFlag | None = None
) -> RunResult:
    """Run the extraction; raise an ExtractError subclass (with its exit code) on failure.

    Setting `stop` (e.g. from a signal handler) ends the run at the next safe point: committed
    windows stay, the run is logged as interrupted, Interrupted is raised.
    """
    started = dt.datetime.now(dt.UTC)
    client = make_client(settings, stop)
    warehouse = make_warehouse(settings.warehouse)
    record = RunRecord(
        run_id=new_run_id(started), command=request.command, started_at=started, as_of=request.as_of
    )
    totals = LoadTotals()
    reports = ReportTotals()
    sites: list[SiteMetadata] = []
    try:
        warehouse.ensure_schema()
        warehouse.record_run(record)
        try:
            version, listed = _sites(client, settings, request)
            sites = land_metadata(client, warehouse, listed, version, record.run_id, started)
            windows = plan(settings, request, warehouse, listed)
            log.info("%d window(s) to fetch for %d site(s)", len(windows), len(sites))
            progress.set_total(len(windows))
            load_windows(
                client,
                warehouse,
                windows,
                concurrency=settings.matomo.concurrency,
                page_size=settings.matomo.page_size,
                run_id=record.run_id,
                progress=progress,
                totals=totals,
            )
            report_requests = (
                plan_reports(settings, request, sites, windows) if settings.reports.enabled else []
            )
            log.info("%d report request(s) for %d site(s)", len(report_requests), len(sites))
            load_reports(
                client, warehouse, report_requests, run_id=record.run_id, totals=reports
            )
            warehouse.compact()
            record.status = "ok"
        except (Interrupted, KeyboardInterrupt):
            record.status = "interrupted"
            raise
        except ExtractError as exc:
            record.status = "failed"
            record.error = str(exc)
            raise
        finally:
            record.finished_at = dt.datetime.now(dt.UTC)
            record.visits = totals.visits
            record.report_rows = reports.rows
            record.warnings = totals.warnings + reports.warnings
            _record_quietly(warehouse, record)
    finally:
        warehouse.close()
        client.close()
    finished = record.finished_at or dt.datetime.now(dt.UTC)
    return RunResult(
        record=record,
        totals=totals,
        reports=reports,
        sites=len(sites),
        requests=client.stats.requests,
        retries=client.stats.retries,
        seconds=(finished - started).total_seconds(),
    )


def _sites(
    client: MatomoClient, settings: Settings, request: RunRequest
) -> tuple[Any, list[Site]]:
    """Matomo's version (the connection and token check) and the sites to load."""
    wanted = request.site_ids if request.site_ids is not None else settings.matomo.sites
    # The first call doubles as the connection and token check, with a short budget.
    budget = min(FIRST_CONTACT_BUDGET, settings.matomo.retry_budget_seconds)
    version = client.call("API.getMatomoVersion", what="connection check", retry_budget=budget)
    log.info(
        "Matomo %s at %s",
        version.get("value") if isinstance(version, dict) else version,
        client.url,
    )
    return version, fetch_sites(client, wanted)


def _record_quietly(warehouse: Warehouse, record: RunRecord) -> None:
    """Log the run's end; if the warehouse itself is what failed, keep the original error."""
    try:
        warehouse.record_run(record)
    except WarehouseError as exc:
        log.warning("could not record the run's end in the warehouse: %s", exc)
