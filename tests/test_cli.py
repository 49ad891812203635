"""The `extract` command as a user meets it: a real subprocess, its exit code and its stderr.

Every expected failure is one line naming the problem and the fix, with the exit code from
docs/architecture.md, no traceback, and never the token, even with -vv.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from matomo_stub import StubMatomo, json_answer

from extract.demo.server import DemoServer

StartServer = Callable[..., DemoServer]
TOKEN = "c0ffeec0ffeec0ffeec0ffeec0ffee42"  # what the test servers are started with
AS_OF = "2026-11-22T08:47:00Z"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def write_config(tmp_path: Path, url: str, **matomo: Any) -> Path:
    options = {"start_date": "2026-11-01", "requests_per_minute": 60_000, **matomo}
    lines = [f'url = "{url}"'] + [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path = tmp_path / "extract.toml"
    path.write_text(
        "[matomo]\n" + "\n".join(lines) + f'\n[warehouse]\npath = "{tmp_path / "m.duckdb"}"\n',
        encoding="utf-8",
    )
    return path


def extract(*args: str, token: str | None = TOKEN, cwd: Path | None = None) -> Result:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MATOMO_", "EXTRACT_", "DUCKDB_"))
    }
    if token is not None:
        env["MATOMO_TOKEN"] = token
    done = subprocess.run(
        [sys.executable, "-m", "extract", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def assert_one_clear_line(result: Result, code: int, *needles: str) -> None:
    assert result.code == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def replay() -> Any:
    with DemoServer(
        replay=str(Path(__file__).parent / "fixtures" / "matomo-5"), token=TOKEN
    ) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- bad input


def test_help_lists_the_commands() -> None:
    result = extract("--help")
    assert result.code == 0
    for command in ("run", "backfill", "status", "reset", "demo"):
        assert command in result.stdout
    assert "--visits-per-day" in extract("demo", "--help").stdout


@pytest.mark.parametrize(
    ("config", "token", "code", "needles"),
    [
        (
            '[matomo]\nurl = "http://h"\nsitse = "all"\n',
            TOKEN,
            2,
            ["unknown key 'sitse' in [matomo] of extract.toml", "did you mean 'sites'"],
        ),
        ('[matomo]\nurl = "http://h"\n', None, 2, ["no Matomo token", "MATOMO_TOKEN"]),
        ('[matomo]\nsites = "all"\n', TOKEN, 2, ["no Matomo URL", "MATOMO_URL"]),
        (
            '[matomo]\nurl = "http://h"\ntoken = "x"\n',
            TOKEN,
            2,
            ["the token does not belong in extract.toml"],
        ),
        (
            '[matomo]\nurl = "http://h"\nconcurrency = "eight"\n',
            TOKEN,
            2,
            ["concurrency in [matomo]", "positive integer"],
        ),
        ("[matomo\n", TOKEN, 2, ["not valid TOML"]),
    ],
    ids=["typo", "no-token", "no-url", "token-in-file", "bad-value", "bad-toml"],
)
def test_config_mistakes(
    tmp_path: Path, config: str, token: str | None, code: int, needles: list[str]
) -> None:
    (tmp_path / "extract.toml").write_text(config, encoding="utf-8")
    result = extract("run", token=token, cwd=tmp_path)  # ./extract.toml is the default
    assert_one_clear_line(result, code, *needles)


def test_missing_config_file(tmp_path: Path) -> None:
    result = extract("--config", str(tmp_path / "nope.toml"), "run")
    assert_one_clear_line(result, 2, "nope.toml not found")


def test_bad_as_of(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:1/")
    result = extract("--config", str(config), "--as-of", "soon", "run")
    assert_one_clear_line(result, 2, "--as-of 'soon' is not a time")


def test_backfill_range_backwards(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:1/")
    result = extract(
        "--config", str(config), "backfill", "--from", "2026-11-05", "--to", "2026-11-01"
    )
    assert_one_clear_line(result, 2, "--from 2026-11-05 is after --to 2026-11-01")


def test_wrong_token(replay: DemoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, replay.url)
    wrong = "0" * 32
    result = extract("-vv", "--config", str(config), "--as-of", AS_OF, "run", token=wrong)
    assert result.code == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Matomo rejected the token (HTTP 401): Unable to authenticate with the provided "
        "token. It is either invalid or expired. Check MATOMO_TOKEN (or token_file)."
    )
    assert wrong not in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_site(replay: DemoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, replay.url, sites=[1, 99])
    result = extract("--config", str(config), "--as-of", AS_OF, "run")
    assert_one_clear_line(result, 3, "site 99 in [matomo] sites")


def test_unreachable_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/matomo/"
    config = write_config(tmp_path, url, retry_budget_seconds=2)
    started = time.monotonic()
    result = extract("--config", str(config), "--as-of", AS_OF, "run")
    assert_one_clear_line(result, 4, f"cannot connect to {url}index.php (connection refused)")
    assert time.monotonic() - started < 30


def test_malformed_json_that_never_recovers(tmp_path: Path) -> None:
    answers = {
        "API.getMatomoVersion": json_answer({"value": "5.0.2"}),
        "SitesManager.getSitesWithAtLeastViewAccess": json_answer(
            [{"idsite": 1, "name": "Shop", "timezone": "UTC", "ts_created": "2026-11-01 00:00:00"}]
        ),
        "Live.getLastVisitsDetails": lambda form: (
            200,
            b'[{"idSite":1,"idVisit":4206,"visitIp":"188.',
        ),
    }
    with StubMatomo(answers) as matomo:
        config = write_config(tmp_path, matomo.url, retry_budget_seconds=3)
        result = extract("--config", str(config), "--as-of", AS_OF, "run")
    assert_one_clear_line(
        result,
        4,
        "response body cut mid-JSON",
        "Live.getLastVisitsDetails (site 1 2026-11-",
        "retry_budget_seconds = 3",
    )


def test_429_storm_beyond_the_budget(demo_server: StartServer, tmp_path: Path) -> None:
    server = demo_server(token=TOKEN, rate_limit=2, sites=1, days=2)
    config = write_config(tmp_path, server.url, retry_budget_seconds=3)
    result = extract("--config", str(config), "--as-of", "2026-11-03T12:00:00Z", "run")
    assert_one_clear_line(result, 4, "HTTP 429 (too many requests)", "retry_budget_seconds = 3")


def test_warehouse_in_use(replay: DemoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, replay.url)
    with duckdb.connect(str(tmp_path / "m.duckdb")):
        result = extract("--config", str(config), "--as-of", AS_OF, "run")
    assert_one_clear_line(result, 5, "m.duckdb is in use by another process")


def test_status_before_any_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:1/")
    result = extract("--config", str(config), "status", token=None)
    assert_one_clear_line(result, 5, "no DuckDB warehouse at", "run `extract run` first")


# --------------------------------------------------------------------------- the commands


def test_run_status_backfill_reset(replay: DemoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, replay.url)
    run = extract("--config", str(config), "--as-of", AS_OF, "run")
    assert run.code == 0, run.stderr
    assert run.stdout == ""
    summary = run.stderr.strip().splitlines()[-1]
    assert summary.startswith("extract run: 4,222 visits landed from 66 window(s) of 3 site(s)")

    status = extract("--config", str(config), "status", token=None)  # no Matomo needed
    assert status.code == 0, status.stderr
    assert "2026-11-21" in status.stdout
    assert "2,568" in status.stdout  # the Shop's visits
    assert "last run:" in status.stdout

    as_json = json.loads(extract("--config", str(config), "status", "--json", token=None).stdout)
    sites = {site["site_id"]: site for site in as_json["sites"]}
    assert {site_id: site["visits"] for site_id, site in sites.items()} == {
        1: 2568,
        2: 1192,
        3: 462,
    }
    assert sites[2]["loaded_through"] == "2026-11-21"
    assert sites[2]["partial_days"] == ["2026-11-22"]
    assert as_json["last_run"]["status"] == "ok"
    assert as_json["last_run"]["visits"] == 4222

    backfill = extract(
        "--config",
        str(config),
        "--as-of",
        AS_OF,
        "backfill",
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-21",
        "--site",
        "3",
    )
    assert backfill.code == 0, backfill.stderr
    assert "extract backfill: 34 visits landed from 2 window(s) of 1 site(s)" in backfill.stderr

    refused = extract("--config", str(config), "reset", "--site", "2", token=None)
    assert_one_clear_line(refused, 2, "add --yes")
    reset = extract("--config", str(config), "reset", "--site", "2", "--yes", token=None)
    assert reset.code == 0, reset.stderr
    assert "matomo_visits 1,192" in reset.stderr
    after = json.loads(extract("--config", str(config), "status", "--json", token=None).stdout)
    assert [site["site_id"] for site in after["sites"]] == [1, 3]


def test_quiet_run_prints_nothing(replay: DemoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, replay.url, sites=[3], start_date="2026-11-20")
    result = extract("-q", "--config", str(config), "--as-of", AS_OF, "run")
    assert result.code == 0
    assert result.stdout == result.stderr == ""


def test_token_never_appears_even_with_debug_logs(replay: DemoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, replay.url, sites=[3], start_date="2026-11-20")
    result = extract("-vv", "--config", str(config), "--as-of", AS_OF, "run")
    assert result.code == 0, result.stderr
    assert "DEBUG" in result.stderr  # the debug logs (urllib3's included) were really on
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_cleanly_exits_130_and_logs_the_run(
    demo_server: StartServer, tmp_path: Path, signum: int
) -> None:
    server = demo_server(token=TOKEN, slow=0.2, sites=2, days=4)
    config = write_config(tmp_path, server.url, page_size=10, concurrency=2)
    as_of = "2026-11-05T12:00:00Z"
    process = subprocess.Popen(
        [sys.executable, "-m", "extract", "-v", "--config", str(config), "--as-of", as_of, "run"],
        env={**os.environ, "MATOMO_TOKEN": TOKEN},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    committed_before = 0
    for line in process.stderr:
        if " visits in " in line:  # a window is committed: the run is in full swing
            committed_before += 1
            break
    process.send_signal(signum)
    try:
        rest = process.stderr.read()
        process.wait(timeout=60)
    finally:
        process.kill()  # never leave it behind, whatever went wrong
    assert process.returncode == 130, rest
    assert rest.strip().splitlines()[-1] == (
        "error: interrupted; committed windows are kept, re-run to resume"
    )
    assert "Traceback" not in rest
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        assert con.execute("select status from raw._extract_runs").fetchall() == [("interrupted",)]
        windows = con.execute("select count(*) from raw._extract_windows").fetchone()
    assert windows is not None
    assert committed_before <= windows[0] < 2 * 5  # stopped early, committed windows kept


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline() -> None:
    """What `./dev demo` runs, smaller: demo Matomo -> extract run -> dbt build -> dbt docs."""
    project = Path(__file__).resolve().parent.parent
    result = extract("demo", "--sites", "2", "--days", "3", "--visits-per-day", "15", token=None)
    assert result.code == 0, result.stderr[-3000:]
    assert "Demo pipeline finished." in result.stderr
    assert (project / "target" / "index.html").exists()
    assert (project / "target" / "catalog.json").exists()
    with duckdb.connect(str(project / "demo" / "matomo.duckdb"), read_only=True) as con:
        visits = con.execute("select count(*) from marts.fct_visits").fetchone()
        compared, differing = con.execute(
            "select count(*), count(*) filter (where not is_match)"
            " from marts.rpt_matomo_reconciliation"
        ).fetchone() or (0, 0)
    assert visits is not None
    assert visits[0] > 0
    assert compared > 0
    assert differing == 0
    assert f"{compared} metric comparisons, 0 differences" in result.stderr
