"""`extract run` end to end over real HTTP: every raw visit lands exactly once, through faults.

The truth is the demo server's own data: the real Matomo 5.0.2 captures in replay mode (per-day
counts from tests/fixtures/matomo-5/daily_totals.csv), or the synthetic dataset, which the test
regenerates in-process from the same seed to know what the server holds at a given clock.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
import requests
from matomo_stub import StubMatomo, json_answer

from extract.config import Settings, load_settings
from extract.demo.server import DemoServer
from extract.demo.synthetic import SyntheticDataset
from extract.errors import MatomoUnavailableError
from extract.progress import RunProgress
from extract.runner import RunRequest, RunResult, execute
from extract.warehouse import duckdb as duckdb_warehouse

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"
CAPTURED_AT = dt.datetime(2026, 11, 22, 8, 47, tzinfo=dt.UTC)
StartServer = Callable[..., DemoServer]
Landed = dict[tuple[int, int], tuple[int, dict[str, Any]]]


def configure(tmp_path: Path, url: str, token: str, **matomo: Any) -> Settings:
    options = {"start_date": "2026-11-01", "requests_per_minute": 60_000, **matomo}
    lines = [f'url = "{url}"'] + [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path = tmp_path / "extract.toml"
    path.write_text(
        "[matomo]\n" + "\n".join(lines) + f'\n[warehouse]\npath = "{tmp_path / "m.duckdb"}"\n',
        encoding="utf-8",
    )
    return load_settings(path, {"MATOMO_TOKEN": token})


def extract(settings: Settings, as_of: dt.datetime, **request: Any) -> RunResult:
    command = "backfill" if "backfill" in request else "run"
    return execute(
        settings, RunRequest(command=command, as_of=as_of, **request), RunProgress(False)
    )


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(settings.warehouse.path), read_only=True) as con:
        return con.execute(sql).fetchall()


def landed(settings: Settings) -> Landed:
    rows = query(
        settings,
        "select site_id, visit_id, epoch(last_action_at)::bigint, payload from raw.matomo_visits",
    )
    result: Landed = {}
    for site, visit, last_action, payload in rows:
        assert (site, visit) not in result, f"visit {site}/{visit} landed twice"
        result[(site, visit)] = (last_action, json.loads(payload))
    return result


def truth(dataset: SyntheticDataset, now: dt.datetime, cutoff: dt.datetime | None = None) -> Landed:
    """What the server holds at `now`, optionally only visits whose last action is <= cutoff."""
    limit = int((cutoff or now).timestamp())
    result: Landed = {}
    for visit in dataset.iter_visits(int(now.timestamp())):
        if visit["lastActionTimestamp"] <= limit:
            result[(visit["idSite"], visit["idVisit"])] = (visit["lastActionTimestamp"], visit)
    return result


def assert_same(got: Landed, expected: Landed) -> None:
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    assert not missing, f"{len(missing)} visits missing, e.g. {missing[:5]}"
    assert not extra, f"{len(extra)} visits too many, e.g. {extra[:5]}"
    for key, (last_action, visit) in expected.items():
        assert got[key][0] == last_action, key
        assert got[key][1] == visit, key


# --------------------------------------------------------------------------- real captures


def captured_visits() -> dict[tuple[int, int], bytes]:
    """Every visit of the captured day pages, by (site, idVisit), as the captured JSON value."""
    visits: dict[tuple[int, int], Any] = {}
    with gzip.open(FIXTURES / "live.jsonl.gz", "rt", encoding="utf-8") as lines:
        for entry in map(json.loads, lines):
            if entry["file"].startswith("live/site") and "_offset" in entry["file"]:
                for visit in json.loads(entry["body"]):
                    visits[(visit["idSite"], visit["idVisit"])] = visit
    return visits


def test_replay_lands_all_4222_captured_visits_exactly_once(
    replay_server: DemoServer, tmp_path: Path
) -> None:
    settings = configure(tmp_path, replay_server.url, replay_server.token)
    result = extract(settings, CAPTURED_AT)
    assert result.record.status == "ok"
    assert result.totals.visits == 4222

    per_day = {
        (site, day.isoformat()): count
        for site, day, count in query(
            settings, "select site_id, visit_date, count(*) from raw.matomo_visits group by all"
        )
    }
    with (FIXTURES / "daily_totals.csv").open(encoding="utf-8") as totals:
        expected = {
            (int(row["idsite"]), row["date"]): int(row["live_visits"])
            for row in csv.DictReader(totals)
        }
    assert per_day == expected  # 63 site-days, the 25-hour New York DST day included

    # The payload is each visit exactly as Matomo sent it: same keys, same values, same types.
    got = landed(settings)
    captured = captured_visits()
    assert set(got) == set(captured)
    assert all(got[key][1] == captured[key] for key in captured)
    assert all(got[key][0] == captured[key]["lastActionTimestamp"] for key in captured)

    windows = query(
        settings,
        "select status, count(*), sum(visits) from raw._extract_windows "
        "where window_date between '2026-11-01' and '2026-11-21' group by status",
    )
    assert windows == [("complete", 63, 4222)]
    open_days = query(
        settings, "select status from raw._extract_windows where window_date = '2026-11-22'"
    )
    assert {status for (status,) in open_days} == {"partial"}  # today, as of the capture
    sites = query(settings, "select site_id, name, timezone from raw.matomo_sites order by 1")
    assert sites == [
        (1, "Shop", "UTC"),
        (2, "Blog", "America/New_York"),
        (3, "Docs DE", "Europe/Berlin"),
    ]
    runs = query(settings, "select command, status, visits, error from raw._extract_runs")
    assert runs == [("run", "ok", 4222, None)]


def row_groups(settings: Settings) -> int:
    rows = query(
        settings,
        "select count(distinct row_group_id) from pragma_storage_info('raw.matomo_visits')",
    )
    return int(rows[0][0])


def test_second_run_only_refetches_the_lookback_and_changes_nothing(
    replay_server: DemoServer, tmp_path: Path
) -> None:
    settings = configure(tmp_path, replay_server.url, replay_server.token, lookback_days=2)
    first = extract(settings, CAPTURED_AT)
    # The window commits write row groups of at most 2,048 visits; the finished run merged them
    # to DuckDB's default size, so dbt's checkpoints have no payloads left to rewrite.
    assert row_groups(settings) == 1
    before = landed(settings)
    again = extract(settings, CAPTURED_AT)
    # Days 20, 21 (lookback) and the open 22nd, for 3 sites; everything else is complete.
    assert again.totals.windows == 9
    assert landed(settings) == before
    assert query(settings, "select count(*) from raw._extract_runs") == [(2,)]
    # Nothing changed, so every visit keeps the row the first run wrote.
    assert query(settings, "select distinct run_id from raw.matomo_visits") == [
        (first.record.run_id,)
    ]
    # The re-fetched windows are merged together; the first run's group is not rewritten for a
    # few rows (DuckDB merges a last group only when that at least doubles it).
    assert row_groups(settings) <= 2


def test_unchanged_visits_of_a_busy_day_are_found_within_the_memory_limit(
    tmp_path: Path,
) -> None:
    """A window of 30,000 visits of 5.6 kB (170 MB of JSON, a busy site's day) fetched again,
    one visit in ten changed: the check that keeps the unchanged ones runs under the
    extractor's DuckDB memory limit (128 MB) and keeps exactly the changed new copies."""
    visits = 30_000
    with duckdb.connect(str(tmp_path / "w.duckdb"), config=duckdb_warehouse._SETTINGS) as con:
        con.execute(
            "create table v (site_id integer, visit_id bigint, visit_date date, "
            "run_id varchar, extracted_at timestamp, payload varchar)"
        )
        for run, fetched_at, changed in (("old", "10:00", ""), ("new", "11:00", "changed")):
            con.execute(
                f"insert into v select 1, i, date '2026-11-02', '{run}', "
                f"timestamp '2026-11-03 {fetched_at}', repeat('x', 5600) "
                f"|| case when i % 10 = 0 then '{changed}' else '' end || i "
                f"from range({visits}) t(i)"
            )
        this = [1, "new", dt.datetime(2026, 11, 3, 11)]
        con.execute(
            duckdb_warehouse._DELETE_UNCHANGED.format(
                visits="v",
                this=duckdb_warehouse._THIS_COMMIT,
                older=duckdb_warehouse._OLDER_COPIES,
            ),
            [*this, 1, 0, visits, *this],
        )
        kept = con.execute("select run_id, count(*) from v group by 1 order by 1").fetchall()
    assert kept == [("new", visits // 10), ("old", visits)]


def test_backfill_refetches_a_range_whatever_its_state(
    replay_server: DemoServer, tmp_path: Path
) -> None:
    settings = configure(tmp_path, replay_server.url, replay_server.token)
    extract(settings, CAPTURED_AT)
    result = extract(
        settings, CAPTURED_AT, backfill=(dt.date(2026, 11, 5), dt.date(2026, 11, 6)), site_ids=(2,)
    )
    assert result.totals.windows == 2
    assert result.totals.visits == 68 + 61  # the Blog's 5th and 6th in daily_totals.csv
    assert len(landed(settings)) == 4222
    rerun = query(
        settings,
        "select site_id, window_date::varchar from raw._extract_windows "
        f"where run_id = '{result.record.run_id}' order by all",
    )
    assert rerun == [(2, "2026-11-05"), (2, "2026-11-06")]


# --------------------------------------------------------------------------- synthetic + faults

DAYS = 3
SYNTHETIC = {"days": DAYS, "visits_per_day": 120, "sites": 3}
AFTER = dt.datetime(2026, 11, 4, 12, tzinfo=dt.UTC)  # every site's three days are closed


def dataset(**options: Any) -> SyntheticDataset:
    return SyntheticDataset(**{**SYNTHETIC, **options})


@pytest.mark.parametrize(
    "faults",
    [
        {"fault_5xx": 0.15, "fault_seed": 1},
        {"fault_truncate": 0.15, "fault_seed": 2},
        {"fault_error": 0.15, "fault_seed": 3},
        {"fault_5xx": 0.1, "fault_truncate": 0.1, "fault_error": 0.1, "fault_seed": 4},
    ],
    ids=["5xx", "truncated-bodies", "error-envelopes", "all-at-once"],
)
def test_faults_neither_lose_nor_double_a_visit(
    demo_server: StartServer, tmp_path: Path, faults: dict[str, Any]
) -> None:
    server = demo_server(**SYNTHETIC, now=AFTER.isoformat(), **faults)
    # Small pages: many requests per window, so faults land mid-window too.
    settings = configure(tmp_path, server.url, server.token, page_size=40, concurrency=4)
    result = extract(settings, AFTER)
    assert result.retries > 0
    assert_same(landed(settings), truth(dataset(), AFTER))


def test_timestamp_ties_across_page_boundaries(demo_server: StartServer, tmp_path: Path) -> None:
    server = demo_server(**SYNTHETIC, now=AFTER.isoformat())
    expected = truth(dataset(), AFTER)
    seconds = [(site, last_action) for (site, _), (last_action, _) in expected.items()]
    assert len(seconds) > len(set(seconds))  # the dataset does share seconds between visits
    settings = configure(tmp_path, server.url, server.token, page_size=2)
    extract(settings, AFTER)
    assert_same(landed(settings), expected)


def test_sub_path_url_without_trailing_slash(demo_server: StartServer, tmp_path: Path) -> None:
    server = demo_server(**SYNTHETIC, now=AFTER.isoformat(), path="/matomo/")
    assert server.url.endswith("/matomo/")
    settings = configure(tmp_path, server.url.rstrip("/"), server.token)
    extract(settings, AFTER)
    assert_same(landed(settings), truth(dataset(), AFTER))


def test_dst_fall_back_day_in_new_york(demo_server: StartServer, tmp_path: Path) -> None:
    server = demo_server(**SYNTHETIC, now=AFTER.isoformat())
    settings = configure(tmp_path, server.url, server.token)
    extract(settings, AFTER)
    expected = truth(dataset(), AFTER)
    assert_same(landed(settings), expected)
    # 2026-11-01 in New York is 25 hours, 04:00Z to 05:00Z next day; 01:xx local happens twice,
    # at 05:xxZ (EDT) and at 06:xxZ (EST). Both hours land on the 1st.
    new_york = ZoneInfo("America/New_York")
    day = [
        ts
        for (site, _), (ts, _) in expected.items()
        if site == 2 and dt.datetime.fromtimestamp(ts, new_york).date() == dt.date(2026, 11, 1)
    ]
    assert min(day) >= int(dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC).timestamp())
    rows = query(
        settings,
        "select count(*), count(*) filter (where hour(last_action_at) in (5, 6)) "
        "from raw.matomo_visits where site_id = 2 and visit_date = '2026-11-01'",
    )
    assert rows[0][0] == len(day)
    repeated_hour = [ts for ts in day if dt.datetime.fromtimestamp(ts, dt.UTC).hour in (5, 6)]
    assert repeated_hour  # the dataset has visits in the doubled hour
    assert rows[0][1] == len(repeated_hour)


def offset_paging(server: DemoServer, site: int, day: str, page_size: int) -> list[int]:
    """What the peers do (api-reference §7.2): Matomo's default order, filter_offset += size."""
    seen: list[int] = []
    offset = 0
    while True:
        page = requests.post(
            server.url + "index.php",
            data={
                "module": "API",
                "format": "JSON",
                "method": "Live.getLastVisitsDetails",
                "idSite": site,
                "period": "day",
                "date": day,
                "filter_limit": page_size,
                "filter_offset": offset,
                "token_auth": server.token,
            },
            timeout=60,
        ).json()
        seen += [visit["idVisit"] for visit in page]
        if len(page) < page_size:
            return seen
        offset += page_size


@pytest.mark.slow
def test_visits_arriving_and_growing_mid_paging(demo_server: StartServer, tmp_path: Path) -> None:
    """The server clock moves on 5 minutes with every Live request of the open day, and late
    actions keep arriving: visits appear and grow between two page requests. Keyset paging
    lands each visit once and loses none that stayed final; offset paging under the very same
    movement returns visits twice (an append-only load doubles them). A later run replaces
    every grown visit (lookback)."""
    start = dt.datetime(2026, 11, 3, 18, tzinfo=dt.UTC)
    shape = {"days": DAYS, "visits_per_day": 300, "sites": 1}
    moving = {**shape, "fault_late": 0.5, "now": start.isoformat(), "clock_step": 300}
    late = SyntheticDataset(**shape, late_fraction=0.5)
    cutoff = start - dt.timedelta(minutes=40)

    server = demo_server(**moving)
    settings = configure(tmp_path, server.url, server.token, page_size=10, concurrency=1)
    result = extract(settings, start)
    moved_on = start + dt.timedelta(seconds=300 * result.totals.pages)
    got = landed(settings)  # asserts that no visit landed twice
    at_start = truth(late, start, cutoff)
    at_end = truth(late, moved_on, cutoff)
    assert set(at_start) & set(at_end) <= set(got)  # every visit that stayed final
    assert all(got[key][0] >= at_start[key][0] for key in at_start if key in got)
    assert any(at_end[key][0] > at_start[key][0] for key in at_start if key in at_end)

    offset_server = demo_server(**moving)
    offset_seen = [
        visit_id
        for day in ("2026-11-01", "2026-11-02", "2026-11-03")
        for visit_id in offset_paging(offset_server, 1, day, page_size=10)
    ]
    assert len(offset_seen) > len(set(offset_seen))  # the same movement: visits seen twice

    # Hours later every late action has arrived: the next run's lookback replaces grown visits.
    later = dt.datetime(2026, 11, 4, 12, tzinfo=dt.UTC)
    settled = demo_server(**{**moving, "now": later.isoformat(), "clock_step": 0})
    rerun = extract(configure(tmp_path, settled.url, settled.token, page_size=10), later)
    now = landed(settings)
    assert_same(now, truth(late, later))
    # Only new and grown visits were written again; the others keep the first run's rows.
    rows = query(settings, "select site_id, visit_id, run_id from raw.matomo_visits")
    writers = {(site, visit): run for site, visit, run in rows}
    changed = {key for key in now if key not in got or now[key] != got[key]}
    assert changed
    assert len(changed) < len(now)
    assert {writers[key] for key in changed} == {rerun.record.run_id}
    assert {writers[key] for key in now.keys() - changed} == {result.record.run_id}


@pytest.mark.slow
def test_429_storm_is_ridden_out(demo_server: StartServer, tmp_path: Path) -> None:
    """Matomo Cloud style: a rolling one-minute limit answered with 429 + Retry-After."""
    server = demo_server(**{**SYNTHETIC, "sites": 1}, now=AFTER.isoformat(), rate_limit=12)
    settings = configure(tmp_path, server.url, server.token, page_size=30)
    result = extract(settings, AFTER)
    assert result.retries > 0
    assert_same(landed(settings), truth(dataset(sites=1), AFTER))


def test_429_beyond_the_budget_fails_cleanly(demo_server: StartServer, tmp_path: Path) -> None:
    server = demo_server(**SYNTHETIC, now=AFTER.isoformat(), rate_limit=3)
    settings = configure(tmp_path, server.url, server.token, retry_budget_seconds=5, page_size=30)
    with pytest.raises(MatomoUnavailableError, match=r"HTTP 429.*retry_budget_seconds = 5"):
        extract(settings, AFTER)
    runs = query(settings, "select status, error from raw._extract_runs")
    assert runs[0][0] == "failed"
    assert "HTTP 429" in runs[0][1]


def test_truncated_actions_are_recorded_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    visit = captured_visits()[(1, 1035)]
    visit["actionDetails"] = (visit["actionDetails"] * 500)[:500]
    visit["truncatedActionsCount"] = 37  # its lastActionTimestamp is 1793923196
    with gzip.open(FIXTURES / "meta_examples.jsonl.gz", "rt", encoding="utf-8") as lines:
        site = next(
            json.loads(entry["body"])
            for entry in map(json.loads, lines)
            if entry["file"] == "meta/SitesManager.getSiteFromId_site1.json"
        )

    def live(form: dict[str, str]) -> tuple[int, bytes]:
        wanted = form["date"] == "2026-11-05" and int(form["minTimestamp"]) < 1793923196
        return 200, json.dumps([visit] if wanted else []).encode()

    answers = {
        "API.getMatomoVersion": json_answer({"value": "5.0.2"}),
        "SitesManager.getSiteFromId": json_answer(site),
        "Live.getLastVisitsDetails": live,
    }
    with StubMatomo(answers) as matomo:
        settings = configure(tmp_path, matomo.url, "any-token", sites=[1], start_date="2026-11-05")
        result = extract(settings, dt.datetime(2026, 11, 6, 12, tzinfo=dt.UTC))
    assert result.totals.warnings == 1
    assert "site 1 2026-11-05: Matomo cut the actionDetails of 1 visit(s)" in caplog.text
    assert query(
        settings, "select visit_id, action_count, truncated_actions_count from raw.matomo_visits"
    ) == [(1035, 500, 37)]
    assert query(
        settings, "select window_date::varchar, warnings from raw._extract_windows order by 1"
    ) == [("2026-11-05", 1), ("2026-11-06", 0)]
    assert query(settings, "select warnings from raw._extract_runs") == [(1,)]


# --------------------------------------------------------------------------- kill -9 and resume


def extract_process(config: Path, token: str, as_of: dt.datetime) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "extract", "-v", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--as-of", as_of.isoformat(), "run"],
        env={**os.environ, "MATOMO_TOKEN": token},
        stderr=subprocess.PIPE,
        text=True,
    )


def complete_windows(settings: Settings) -> int:
    rows = query(settings, "select count(*) from raw._extract_windows where status = 'complete'")
    return int(rows[0][0])


def test_kill_9_at_any_moment_then_resume(demo_server: StartServer, tmp_path: Path) -> None:
    """SIGKILL mid-run, three times at different moments (mid-fetch, mid-commit, between), then
    a normal run: exactly one row per visit, and each run resumed after the last commit."""
    shape = {**SYNTHETIC, "days": 6}
    after = dt.datetime(2026, 11, 7, 12, tzinfo=dt.UTC)
    server = demo_server(**shape, now=after.isoformat(), slow=0.03)
    settings = configure(
        tmp_path, server.url, server.token, page_size=15, concurrency=3, lookback_days=0
    )
    config = tmp_path / "extract.toml"
    done = [0]
    for commits, delay in ((1, 0.0), (2, 0.05), (3, 0.13)):
        process = extract_process(config, server.token, after)
        assert process.stderr is not None
        seen = 0
        for line in process.stderr:
            seen += " visits in " in line  # -v logs one line per committed window
            if seen >= commits:
                break
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
        assert process.returncode == -signal.SIGKILL
        done.append(complete_windows(settings))
        assert done[-1] >= done[-2] + commits  # nothing committed was lost; it resumed after
    assert done[-1] < 6 * 3  # it really was stopped half way

    finish = extract_process(config, server.token, after)
    try:
        _, errors = finish.communicate(timeout=300)
    finally:
        finish.kill()  # a no-op once it has exited
    assert finish.returncode == 0, errors
    assert complete_windows(settings) == 6 * 3
    assert_same(landed(settings), truth(SyntheticDataset(**shape), after))
    statuses = query(
        settings, "select status, count(*) from raw._extract_runs group by 1 order by 1"
    )
    assert statuses == [("ok", 1), ("running", 3)]  # killed runs never got to log their end
