"""`extract demo`: the whole pipeline on the embedded default, end to end.

Starts the bundled demo Matomo on loopback, runs the real `extract run` against it into a
DuckDB file, then `dbt build` and `dbt docs generate`, and prints where everything is plus a
few headline numbers.
Every step is the same command a user runs by hand; nothing here is demo-only logic.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from extract.demo.server import DemoServer
from extract.errors import ExtractError

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEMO_START = dt.date(2026, 11, 1)


def _run(args: list[str], env: dict[str, str]) -> None:
    log.info("$ %s", " ".join(args))
    result = subprocess.run(args, cwd=PROJECT_DIR, env=env, check=False)
    if result.returncode != 0:
        msg = f"step failed (exit {result.returncode}): {' '.join(args)}"
        raise ExtractError(msg)


def _ensure_profile() -> Path:
    """dbt finds profiles.yml in the project directory first; seed it from the example once."""
    profile = PROJECT_DIR / "profiles.yml"
    if not profile.exists():
        shutil.copyfile(PROJECT_DIR / "profiles.yml.example", profile)
    return profile


def _write_config(path: Path, url: str, duckdb_path: Path) -> None:
    path.write_text(
        "[matomo]\n"
        f'url = "{url}"\n'
        'sites = "all"\n'
        f'start_date = "{DEMO_START.isoformat()}"\n'
        "requests_per_minute = 6000\n"
        "\n[warehouse]\n"
        'target = "duckdb"\n'
        f'path = "{duckdb_path}"\n',
        encoding="utf-8",
    )


def _headlines(duckdb_path: Path) -> list[str]:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        rows = con.execute(
            """
            select
                sites.site_name,
                count(*) as visits,
                sum(visits.action_count) as actions,
                sum(case when visits.is_converted then 1 else 0 end) as converted_visits
            from marts.fct_visits as visits
            inner join marts.dim_sites as sites on visits.site_id = sites.site_id
            group by 1
            order by 1
            """
        ).fetchall()
        compared, differing = con.execute(
            "select count(*), count(*) filter (where not is_match)"
            " from marts.rpt_matomo_reconciliation"
        ).fetchone() or (0, 0)
    lines = [
        f"  {name:<12} {visits:>7,} visits {actions:>8,} actions {converted:>6,} converted visits"
        for name, visits, actions, converted in rows
    ]
    lines.append(
        f"  reconciliation with Matomo's own reports: {compared} metric comparisons,"
        f" {differing} differences"
    )
    return lines


def run_demo(visits_per_day: int = 60, days: int = 21, sites: int = 3) -> None:
    """Run the whole pipeline on the demo Matomo and DuckDB; raise ExtractError on a failed step."""
    demo_dir = PROJECT_DIR / "demo"
    demo_dir.mkdir(exist_ok=True)
    duckdb_path = demo_dir / "matomo.duckdb"
    for stale in (duckdb_path, duckdb_path.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    _ensure_profile()
    as_of = dt.datetime.combine(DEMO_START + dt.timedelta(days=days + 1), dt.time(5), dt.UTC)

    server = DemoServer(
        sites=sites,
        days=days,
        visits_per_day=visits_per_day,
        start=DEMO_START.isoformat(),
        now=as_of.isoformat(),
    ).start()
    try:
        config = demo_dir / "extract.toml"
        _write_config(config, server.url, duckdb_path)
        env = {
            **os.environ,
            "MATOMO_TOKEN": server.token,
            "EXTRACT_AS_OF": as_of.isoformat(),
            "DUCKDB_PATH": str(duckdb_path),
        }
        bin_dir = Path(sys.executable).parent
        _run([str(bin_dir / "extract"), "--config", str(config), "run"], env)
        _run([str(bin_dir / "dbt"), "build", "--profiles-dir", str(PROJECT_DIR)], env)
        _run([str(bin_dir / "dbt"), "docs", "generate", "--profiles-dir", str(PROJECT_DIR)], env)
    finally:
        server.stop()

    summary = [
        "",
        "Demo pipeline finished.",
        f"  DuckDB warehouse: {duckdb_path}",
        f"  dbt docs:         {PROJECT_DIR / 'target' / 'index.html'}",
        "                    (browse them with: .venv/bin/dbt docs serve)",
        *_headlines(duckdb_path),
    ]
    sys.stderr.write("\n".join(summary) + "\n")
