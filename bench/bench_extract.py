"""Extraction benchmark: `extract run` against the demo Matomo, beside the references it must match.

    .venv/bin/python bench/bench_extract.py                       # 100k and 1M visits + latency
    .venv/bin/python bench/bench_extract.py --visits 50000        # a quick run
    .venv/bin/python bench/bench_extract.py --skip-latency --visits 1000000

1. Throughput (per --visits scale): a fresh demo server with 3 sites holding about that many
   visits; `extract run` (a real subprocess) into a fresh DuckDB file, then two references in the
   same run: a bare client downloading the same Live pages with the same concurrency and
   discarding them, and DuckDB's floor for landing the same visits (one read_ndjson_objects of
   them as NDJSON into the same raw table shape). Target: extraction <= 1.25 x the slower one.
2. Latency-bound: the server slowed to a real Matomo 5's pace (0.7 s per 100-visit page), many
   site-days, concurrency 1, 2, 4, 8. Target: throughput >= 0.8 x concurrency x the serial rate.
3. Memory: the extractor's peak RSS (VmHWM, polled) at every scale. Target: < 400 MB, flat.

Prints a table and writes the figures to bench/results/extract-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from extract.demo.server import DemoServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
START = dt.date(2026, 11, 1)
SITES = 3
PAGE_SIZE = 1000
LAST_ACTION = re.compile(rb'"lastActionTimestamp":"?(\d+)')


def as_of_for(days: int) -> str:
    """Noon UTC the day after the data ends: every site's every day is closed."""
    return f"{START + dt.timedelta(days=days + 1)}T12:00:00+00:00"


def write_config(directory: Path, url: str, concurrency: int, page_size: int) -> Path:
    path = directory / "extract.toml"
    path.write_text(
        f'[matomo]\nurl = "{url}"\nstart_date = "{START}"\nrequests_per_minute = 1000000\n'
        f"concurrency = {concurrency}\npage_size = {page_size}\n"
        f'[warehouse]\npath = "{directory / "bench.duckdb"}"\n'
        # Visits only: the references download and land the Live pages, nothing else.
        "[reports]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def peak_rss_mb(pid: int) -> float:
    """The process's own high-water RSS (VmHWM; unlike wait4's ru_maxrss, which on Linux also
    counts the parent's memory at fork time)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def run_extractor(config: Path, token: str, as_of: str) -> dict[str, Any]:
    """`extract run` as a user runs it; wall time and peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "extract", "-q", "--config", str(config), "--as-of", as_of, "run"],
        env={**os.environ, "MATOMO_TOKEN": token},
        cwd=ROOT,
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, peak_rss_mb(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"extract run failed with exit code {process.returncode}")
    return {"seconds": seconds, "peak_rss_mb": peak}


def bare_download(server: DemoServer, days: int, concurrency: int) -> dict[str, Any]:
    """The same keyset page requests, nothing done with the bodies but finding the next cursor."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency))
    url = server.url + "index.php"

    def window(site: int, day: dt.date) -> tuple[int, int]:
        cursor, limit, pages, visits = 0, PAGE_SIZE, 0, 0
        while True:
            body = session.post(
                url,
                data={
                    "module": "API",
                    "format": "JSON",
                    "method": "Live.getLastVisitsDetails",
                    "idSite": site,
                    "period": "day",
                    "date": day.isoformat(),
                    "filter_sort_order": "asc",
                    "minTimestamp": cursor,
                    "filter_limit": limit,
                    "token_auth": server.token,
                },
                timeout=600,
            ).content
            seconds = LAST_ACTION.findall(body)
            pages, visits = pages + 1, visits + len(seconds)
            if len(seconds) < limit:
                return pages, visits
            limit = limit * 2 if seconds[0] == seconds[-1] else PAGE_SIZE
            cursor = int(seconds[-1]) - 1

    jobs = [
        (site, START + dt.timedelta(days=n)) for n in range(days) for site in range(1, SITES + 1)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda job: window(*job), jobs))
    return {
        "seconds": time.perf_counter() - started,
        "pages": sum(pages for pages, _ in done),
        "visits_downloaded": sum(visits for _, visits in done),
    }


def export_ndjson(database: Path, target: Path) -> int:
    """The landed visits as NDJSON, streamed (the floor's input: the very same visits)."""
    rows = 0
    with (
        duckdb.connect(str(database), read_only=True) as con,
        target.open("w", encoding="utf-8") as out,
    ):
        cursor = con.execute("select payload from raw.matomo_visits")
        while batch := cursor.fetchmany(10_000):
            out.writelines(payload + "\n" for (payload,) in batch)
            rows += len(batch)
    return rows


FLOOR = """
insert into raw.matomo_visits
select
    cast(keys[1] as integer),
    cast(keys[2] as bigint),
    make_timestamp(cast(keys[3] as bigint) * 1000000),
    cast(make_timestamp(cast(keys[3] as bigint) * 1000000) as date),
    cast(json_array_length(json, '$.actionDetails') as integer),
    try_cast(keys[4] as integer),
    now()::timestamp,
    'floor',
    json
from (
    select
        json,
        json_extract_string(
            json, ['$.idSite', '$.idVisit', '$.lastActionTimestamp', '$.truncatedActionsCount']
        ) as keys
    from read_ndjson_objects(?)
)
"""


def duckdb_floor(ndjson: Path, directory: Path) -> dict[str, Any]:
    """One statement, DuckDB's defaults (all cores, its own memory limit), same table shape."""
    with duckdb.connect(str(directory / "floor.duckdb")) as con:
        con.execute(f"attach '{directory / 'bench.duckdb'}' as extracted (read_only)")
        con.execute("create schema raw")
        con.execute("create table raw.matomo_visits as from extracted.raw.matomo_visits limit 0")
        con.execute("detach extracted")
        started = time.perf_counter()
        con.execute(FLOOR, [str(ndjson)])
        con.execute("checkpoint")
        seconds = time.perf_counter() - started
        rows = con.execute("select count(*) from raw.matomo_visits").fetchone()
    return {"seconds": seconds, "rows": rows[0] if rows else 0}


def throughput(visits: int, concurrency: int) -> dict[str, Any]:
    days = 30
    per_day = max(1, round(visits / (SITES * days)))
    as_of = as_of_for(days)
    options = {"days": days, "visits_per_day": per_day, "sites": SITES, "now": as_of}
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as scratch:
        directory = Path(scratch)
        with DemoServer(**options) as server:
            config = write_config(directory, server.url, concurrency, PAGE_SIZE)
            extraction = run_extractor(config, server.token, as_of)
        with duckdb.connect(str(directory / "bench.duckdb"), read_only=True) as con:
            landed = con.execute("select count(*) from raw.matomo_visits").fetchone()
        with DemoServer(**options) as server:  # a fresh server: no warm caches either way
            bare = bare_download(server, days, concurrency)
        ndjson = directory / "visits.ndjson"
        export_ndjson(directory / "bench.duckdb", ndjson)
        floor = duckdb_floor(ndjson, directory)
        ndjson_mb = ndjson.stat().st_size / 1e6
    visits_landed = landed[0] if landed else 0
    slower = max(bare["seconds"], floor["seconds"])
    return {
        "visits_requested": visits,
        "visits_landed": visits_landed,
        "ndjson_mb": round(ndjson_mb, 1),
        "concurrency": concurrency,
        "extract_seconds": round(extraction["seconds"], 2),
        "extract_visits_per_second": round(visits_landed / extraction["seconds"]),
        "extract_peak_rss_mb": round(extraction["peak_rss_mb"], 1),
        "bare_download_seconds": round(bare["seconds"], 2),
        "bare_download_pages": bare["pages"],
        "duckdb_floor_seconds": round(floor["seconds"], 2),
        "ratio_to_slower_reference": round(extraction["seconds"] / slower, 3),
        "target_ratio": 1.25,
    }


def latency(visits: int, levels: list[int]) -> list[dict[str, Any]]:
    """A real Matomo's pace: ~0.7 s per 100-visit page (measured on Matomo 5)."""
    sites, days = 4, 12  # 48 site-days; the demo's sites 1-4 use IANA zones
    per_day = max(1, round(visits / (sites * days)))
    as_of = as_of_for(days)
    options = {
        "days": days,
        "visits_per_day": per_day,
        "sites": sites,
        "now": as_of,
        "slow_per_100": 0.7,
    }
    rows = []
    serial_rate = 0.0
    for concurrency in levels:
        with (
            tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch,
            DemoServer(**options) as server,
        ):
            directory = Path(scratch)
            config = write_config(directory, server.url, concurrency, page_size=100)
            run = run_extractor(config, server.token, as_of)
            with duckdb.connect(str(directory / "bench.duckdb"), read_only=True) as con:
                landed = con.execute("select count(*) from raw.matomo_visits").fetchone()
        rate = (landed[0] if landed else 0) / run["seconds"]
        serial_rate = serial_rate or rate
        rows.append(
            {
                "concurrency": concurrency,
                "visits": landed[0] if landed else 0,
                "seconds": round(run["seconds"], 2),
                "visits_per_second": round(rate, 1),
                "speedup": round(rate / serial_rate, 2),
                "efficiency": round(rate / (serial_rate * concurrency), 3),
                "target_efficiency": 0.8,
                "peak_rss_mb": round(run["peak_rss_mb"], 1),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> Iterator[str]:
    if not rows:
        return
    keys = list(rows[0])
    widths = [max(len(key), *(len(f"{row[key]}") for row in rows)) for key in keys]
    yield "  ".join(key.rjust(width) for key, width in zip(keys, widths, strict=True))
    for row in rows:
        yield "  ".join(f"{row[key]}".rjust(width) for key, width in zip(keys, widths, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--visits", type=int, action="append", help="scale(s); default 100000 and 1000000"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="throughput runs (default 4)")
    parser.add_argument("--latency-visits", type=int, default=20_000)
    parser.add_argument("--latency-levels", default="1,2,4,8")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
        },
        "throughput": [],
        "latency": [],
    }
    for visits in [] if args.skip_throughput else args.visits or [100_000, 1_000_000]:
        report["throughput"].append(throughput(visits, args.concurrency))
        print("\n".join(table(report["throughput"][-1:])), flush=True)
    if not args.skip_latency:
        levels = [int(level) for level in args.latency_levels.split(",")]
        report["latency"] = latency(args.latency_visits, levels)

    print("\nThroughput (extract run vs the slower of bare download and DuckDB's floor)")
    print("\n".join(table(report["throughput"])))
    if report["latency"]:
        print("\nLatency-bound (0.7 s per 100-visit page)")
        print("\n".join(table(report["latency"])))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"extract-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
