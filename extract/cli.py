"""The `extract` command: a thin click layer over the runner; expected errors are one line."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
import orjson

from extract import __version__
from extract.config import Settings, load_settings
from extract.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ConfigError, ExtractError
from extract.memory import keep_memory_flat
from extract.progress import RunProgress, progress_wanted
from extract.ratelimit import StopFlag
from extract.runner import RunRequest, RunResult, execute
from extract.state import WarehouseStatus
from extract.warehouse import make_warehouse
from extract.windows import parse_as_of

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_INTERRUPTED = "interrupted; committed windows are kept, re-run to resume"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stderr: the progress bar swaps it to draw above itself."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _Redactor(logging.Filter):
    """Last line of defence: no log record leaves with a secret in it, whoever logged it."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.scrub(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.scrub(record.exc_text)
        return True


@dataclass
class _Context:
    config: Path | None
    as_of: str | None
    quiet: bool
    redactor: _Redactor = field(default_factory=_Redactor)

    def settings(self, *, require_matomo: bool = True) -> Settings:
        settings = load_settings(self.config, os.environ, require_matomo=require_matomo)
        if settings.matomo.token:
            self.redactor.secrets.append(settings.matomo.token)
        return settings

    def as_of_time(self) -> dt.datetime:
        return parse_as_of(self.as_of) if self.as_of else dt.datetime.now(dt.UTC)

    def fail(self, message: str, code: int) -> NoReturn:
        click.echo(f"error: {self.redactor.scrub(message)}", err=True)
        raise SystemExit(code)


def _setup_logging(verbose: int, quiet: bool, redactor: _Redactor) -> None:
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _expected_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Map expected failures to one line on stderr and their exit code; no tracebacks for them."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        context = click.get_current_context().find_object(_Context)
        assert context is not None
        try:
            return command(*args, **kwargs)
        except ExtractError as exc:
            context.fail(
                _INTERRUPTED if exc.exit_code == EXIT_INTERRUPTED else str(exc), exc.exit_code
            )
        except KeyboardInterrupt:
            context.fail(_INTERRUPTED, EXIT_INTERRUPTED)
        except Exception as exc:  # the last resort: one line, traceback with -vv
            log.debug("internal error", exc_info=True)
            context.fail(
                f"internal error: {type(exc).__name__}: {exc} (re-run with -vv for the traceback)",
                EXIT_INTERNAL,
            )

    return wrapper


def _stop_on_signals(stop: StopFlag) -> None:
    """Ctrl-C or SIGTERM: finish at the next safe point (committed windows stay, the run is
    logged as interrupted); a second one quits at once."""

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning("stopping: the run ends at the next safe point (again to quit at once)")

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $EXTRACT_CONFIG or ./extract.toml).",
)
@click.option(
    "--as-of",
    "as_of",
    envvar="EXTRACT_AS_OF",
    help="Pretend it is this time (ISO 8601 or epoch seconds) for open days and finality.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Errors only; no progress bar or summary.")
@click.version_option(__version__, prog_name="extract")
@click.pass_context
def cli(
    ctx: click.Context, config: Path | None, as_of: str | None, verbose: int, quiet: bool
) -> None:
    """Land Matomo's raw visits, reports and metadata in a warehouse, exactly once and resumably."""
    context = _Context(config=config, as_of=as_of, quiet=quiet)
    _setup_logging(verbose, quiet, context.redactor)
    keep_memory_flat()
    ctx.obj = context


def _run(context: _Context, request_for: Callable[[dt.datetime], RunRequest]) -> None:
    settings = context.settings()
    request = request_for(context.as_of_time())
    stop = StopFlag()
    _stop_on_signals(stop)
    with RunProgress(progress_wanted(context.quiet)) as progress:
        result = execute(settings, request, progress, stop)
    if not context.quiet:
        click.echo(_summary(result), err=True)


def _summary(result: RunResult) -> str:
    totals = result.totals
    rate = totals.visits / result.seconds if result.seconds > 0 else 0.0
    return (
        f"extract {result.record.command}: {totals.visits:,} visits landed from {totals.windows:,} "
        f"window(s) of {result.sites} site(s) in {result.seconds:.1f} s ({rate:,.0f} visits/s); "
        f"{result.reports.rows:,} report rows in {result.reports.slices:,} report slice(s); "
        f"{result.requests:,} requests, {result.retries:,} retries, "
        f"{result.record.warnings:,} warnings; run {result.record.run_id}"
    )


@cli.command()
@click.pass_obj
@_expected_errors
def run(context: _Context) -> None:
    """Incremental load: every day not yet complete, plus the lookback days."""
    _run(context, lambda as_of: RunRequest(command="run", as_of=as_of))


@cli.command()
@click.option("--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--site", "site_id", type=click.IntRange(min=1), help="Only this site id.")
@click.pass_obj
@_expected_errors
def backfill(context: _Context, first: dt.datetime, last: dt.datetime, site_id: int | None) -> None:
    """Re-pull every day from --from to --to (inclusive), whatever was loaded before."""
    if first > last:
        raise ConfigError(f"--from {first:%Y-%m-%d} is after --to {last:%Y-%m-%d}")
    _run(
        context,
        lambda as_of: RunRequest(
            command="backfill",
            as_of=as_of,
            backfill=(first.date(), last.date()),
            site_ids=(site_id,) if site_id else None,
        ),
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@_expected_errors
def status(context: _Context, as_json: bool) -> None:
    """Per site: loaded through, open days, visit counts, warnings; and the last run."""
    settings = context.settings(require_matomo=False)
    warehouse = make_warehouse(settings.warehouse, create=False)
    try:
        warehouse.ensure_schema()
        report = warehouse.status()
    finally:
        warehouse.close()
    if as_json:
        click.echo(orjson.dumps(_status_json(report), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(_status_text(report, settings.warehouse.where))


def _status_json(report: WarehouseStatus) -> dict[str, Any]:
    last = report.last_run
    return {
        "sites": [
            {
                "site_id": site.site_id,
                "first_day": site.first_day,
                "loaded_through": site.loaded_through,
                "partial_days": site.partial_days,
                "windows": len(site.windows),
                "visits": site.visits,
                "warnings": site.warnings,
                "last_loaded_at": site.last_loaded_at,
            }
            for site in report.sites
        ],
        "runs": report.runs,
        "last_run": None if last is None else vars(last),
    }


def _status_text(report: WarehouseStatus, where: str) -> str:
    lines = [f"warehouse: {where}"]
    if not report.sites:
        lines.append("nothing loaded yet: run `extract run`")
    else:
        lines.append(
            f"{'site':>6}  {'loaded through':<14}  {'open days':<22}  {'visits':>10}  warnings"
        )
        for site in report.sites:
            through = site.loaded_through.isoformat() if site.loaded_through else "-"
            open_days = ", ".join(day.isoformat() for day in site.partial_days[-2:]) or "-"
            lines.append(
                f"{site.site_id:>6}  {through:<14}  {open_days:<22}  "
                f"{site.visits:>10,}  {site.warnings:>8,}"
            )
    last = report.last_run
    if last is not None:
        ended = f"{last.finished_at:%Y-%m-%d %H:%M:%S} UTC" if last.finished_at else "not finished"
        lines.append(
            f"last run: {last.run_id} ({last.command}) {last.status}, {last.visits:,} visits, "
            f"{last.warnings:,} warnings, ended {ended}, as of {last.as_of:%Y-%m-%d %H:%M:%S} UTC"
            + (f"; error: {last.error}" if last.error else "")
        )
    return "\n".join(lines)


@cli.command()
@click.option("--site", "site_id", required=True, type=click.IntRange(min=1), help="Site id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@_expected_errors
def reset(context: _Context, site_id: int, yes: bool) -> None:
    """Delete a site's raw rows and checkpoints, so the next run loads it from scratch."""
    settings = context.settings(require_matomo=False)
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("reset deletes data: add --yes to run it without a prompt")
        click.confirm(
            f"Delete every raw row and checkpoint of site {site_id} in {settings.warehouse.where}?",
            abort=True,
        )
    warehouse = make_warehouse(settings.warehouse, create=False)
    try:
        warehouse.ensure_schema()
        deleted = warehouse.reset_site(site_id)
    finally:
        warehouse.close()
    counts = ", ".join(f"{table} {rows:,}" for table, rows in deleted.items())
    click.echo(f"site {site_id} reset: rows deleted: {counts}", err=True)


@cli.command()
@click.option("--visits-per-day", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=21, show_default=True)
@click.option("--sites", type=click.IntRange(min=1), default=3, show_default=True)
@click.pass_obj
@_expected_errors
def demo(context: _Context, visits_per_day: int, days: int, sites: int) -> None:
    """The whole pipeline on a bundled demo Matomo: extract run -> dbt build -> dbt docs."""
    from extract.quickstart import run_demo

    run_demo(visits_per_day=visits_per_day, days=days, sites=sites)
