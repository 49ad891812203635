"""`python -m extract.demo serve ...`: the demo Matomo server (options: docs/architecture.md)."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Protocol

import click

from extract.demo import DEMO_TOKEN
from extract.demo.dataset import Dataset
from extract.demo.faults import FaultConfig
from extract.demo.server import (
    TOKEN_ENV,
    Clock,
    DemoHttpServer,
    HttpBehaviour,
    MatomoApi,
    ServerOptions,
)

logger = logging.getLogger("extract.demo")
DEFAULTS = ServerOptions()
_DEFAULT_NOW_AFTER_END = 5 * 3600  # like the captures: every visit of the last day has ended


class BoundedDataset(Dataset, Protocol):
    def end_timestamp(self) -> int:
        """UTC epoch at which the last local day of every site has ended."""
        ...


@click.group()
def main() -> None:
    """Demo Matomo 5 Reporting API server."""


@main.command()
@click.option("--host", default=DEFAULTS.host, show_default=True)
@click.option("--port", type=int, default=DEFAULTS.port, show_default=True, help="0: any free port")
@click.option("--path", default=DEFAULTS.path, show_default=True, help="sub-path, e.g. /matomo/")
@click.option("--token", envvar=TOKEN_ENV, default=DEMO_TOKEN, show_default=False,
              help=f"token_auth to accept (env {TOKEN_ENV}; default: the demo token)")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=DEFAULTS.start,
              show_default=True)
@click.option("--days", type=int, default=DEFAULTS.days, show_default=True)
@click.option("--visits-per-day", type=int, default=DEFAULTS.visits_per_day, show_default=True)
@click.option("--sites", type=int, default=DEFAULTS.sites, show_default=True)
@click.option("--now", "now_text", default=None,
              help="server clock, ISO 8601 or epoch (default: end of the data + 5 h)")
@click.option("--clock-step", type=float, default=0.0, help="seconds added per Live request")
@click.option("--replay", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="serve captured responses from this directory")
@click.option("--slow", type=float, default=0.0, help="seconds of latency per request")
@click.option("--slow-per-100", type=float, default=0.0,
              help="extra seconds per 100 Live visits served (a real Matomo 5: ~0.7)")
@click.option(
    "--rate-limit", type=int, default=0,
    help="Live requests per rolling minute, as Matomo Cloud (0: none)",
)
@click.option("--fault-5xx", type=float, default=0.0, help="probability of a 500/502/503")
@click.option("--fault-truncate", type=float, default=0.0, help="probability of a cut body")
@click.option("--fault-error", type=float, default=0.0,
              help="probability of a transient error envelope")
@click.option("--fault-late", type=float, default=0.0,
              help="fraction of visits that keep growing (synthetic data only)")
@click.option("--fault-seed", type=int, default=0, show_default=True)
@click.option("--log-level", default=DEFAULTS.log_level, show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def serve(
    host: str,
    port: int,
    path: str,
    token: str,
    seed: int,
    start: dt.datetime,
    days: int,
    visits_per_day: int,
    sites: int,
    now_text: str | None,
    clock_step: float,
    replay: Path | None,
    slow: float,
    slow_per_100: float,
    rate_limit: int,
    fault_5xx: float,
    fault_truncate: float,
    fault_error: float,
    fault_late: float,
    fault_seed: int,
    log_level: str,
) -> None:
    """Serve until SIGTERM/SIGINT; prints `READY <url>` on stdout once listening."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    dataset = _dataset(replay, seed, start.date(), days, visits_per_day, sites, fault_late)
    now = _parse_now(now_text) if now_text else dataset.end_timestamp() + _DEFAULT_NOW_AFTER_END
    try:
        faults = FaultConfig(fault_seed, fault_5xx, fault_truncate, fault_error)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    behaviour = HttpBehaviour(_normalise_path(path), slow, slow_per_100, rate_limit, faults)
    server = DemoHttpServer((host, port), MatomoApi(dataset, token, Clock(now, clock_step)),
                            behaviour)
    signal.signal(signal.SIGTERM, _exit)
    logger.info("serving %s at server time %d", server.url, now)
    sys.stdout.write(f"READY {server.url}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _dataset(
    replay: Path | None,
    seed: int,
    start: dt.date,
    days: int,
    visits_per_day: int,
    sites: int,
    late_fraction: float,
) -> BoundedDataset:
    if replay is not None:
        from extract.demo.replay import ReplayDataset

        return ReplayDataset(replay)
    # Imported here: replay mode must not pay for (or depend on) the generator.
    from extract.demo.synthetic import SyntheticDataset

    return SyntheticDataset(seed=seed, start=start, days=days, visits_per_day=visits_per_day,
                            sites=sites, late_fraction=late_fraction)


def _parse_now(text: str) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"--now: not ISO 8601 or epoch seconds: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # a bare time is UTC, like every raw timestamp
    return int(moment.timestamp())


def _normalise_path(path: str) -> str:
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def _exit(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds serve_forever in the main thread; the finally closes


if __name__ == "__main__":
    main()
