"""Incremental builds equal a full refresh, row for row.

A demo Matomo seen at an early time (late-arriving tails on, so visits grow afterwards) is
extracted and built; the same traffic seen a day later (new days, grown visits) is extracted
into the same warehouse and built again, incrementally. A copy of that warehouse rebuilt with
`--full-refresh` must hold exactly the same rows in every model stored as a table.

Days can also empty: after `extract reset` and a re-extraction from a later start date, the
early days have no visits any more, and an incremental run must clear them too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_pipeline import BIN_DIR, START_DATE, Pipeline

from extract.demo.server import DemoServer

pytestmark = pytest.mark.slow

EARLY = "2026-11-03T22:58:00Z"
LATE = "2026-11-05T19:00:00Z"
SERVER: dict[str, Any] = {"sites": 5, "days": 6, "visits_per_day": 200, "fault_late": 0.5}

VisitShapes = dict[tuple[int, int], tuple[dt.date, int, dt.datetime]]


@dataclass(frozen=True)
class Builds:
    incremental: Pipeline
    full_refresh: Pipeline
    # (site, visit) -> (report day, actions, extracted_at) after the first run
    first_extract: VisitShapes
    second_extract: VisitShapes
    first_newest_days: dict[str, dt.date]  # incremental model -> newest day after the first build


def _visit_shapes(pipeline: Pipeline) -> VisitShapes:
    with pipeline.connect() as con:
        rows = con.execute(
            "select site_id, visit_id, visit_date, action_count, extracted_at "
            "from raw.matomo_visits"
        ).fetchall()
    return {(site, visit): (day, actions, version) for site, visit, day, actions, version in rows}


def _manifest_models(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    manifest = json.loads((pipeline.workdir / "target" / "manifest.json").read_text())
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def _by_day(model: dict[str, Any]) -> bool:
    return model["config"].get("incremental_strategy") == "replace_lookback_days"


def _newest_days(pipeline: Pipeline) -> dict[str, dt.date]:
    """Per model incremental by day, the newest value of its day column (the unique_key)."""
    models = _manifest_models(pipeline)
    newest = {}
    with pipeline.connect() as con:
        for name, model in models.items():
            if _by_day(model):
                day = model["config"]["unique_key"]
                row = con.execute(f"select max({day}) from {model['schema']}.{name}").fetchone()
                newest[name] = row[0] if row else None
    return newest


DELETE = re.compile(r"delete from \S+\s+where (\w+) >= date '([0-9-]+)'")


def _rebuild_starts(builds: Builds) -> dict[str, tuple[str, str]]:
    """Per incremental model, (day column, first day) of the second build's delete."""
    models = _manifest_models(builds.incremental)
    target = builds.incremental.workdir / "target" / "run"
    starts = {}
    for name in builds.first_newest_days:
        path = target / "matomo_warehouse" / models[name]["original_file_path"]
        delete = DELETE.search(path.read_text())
        assert delete is not None, name
        starts[name] = delete.group(1, 2)
    return starts


def _changed_days(builds: Builds) -> set[dt.date]:
    """Days of the visits the second extraction added or changed, where they were and are."""
    first, second = builds.first_extract, builds.second_extract
    days = set()
    for key, (day, _, version) in second.items():
        before = first.get(key)
        if before is None or (before[0], before[2]) != (day, version):
            days |= {day} | ({before[0]} if before else set())
    return days


def _differences_from(pipeline: Pipeline, full_refresh: Pipeline) -> dict[str, Any]:
    """Rows only one of the two warehouses has, per model stored as a table; row counts."""
    models = _manifest_models(pipeline)
    tables = sorted(
        (m["schema"], name)
        for name, m in models.items()
        if m["config"]["materialized"] in ("incremental", "table")
    )
    differences, row_counts = {}, {}
    with pipeline.connect() as con:
        con.execute(f"attach '{full_refresh.warehouse}' as full_refresh (read_only)")
        for schema, name in tables:
            ours, theirs = f"{schema}.{name}", f"full_refresh.{schema}.{name}"
            only_ours = con.execute(
                f"select count(*) from (from {ours} except all from {theirs})"
            ).fetchone()
            only_theirs = con.execute(
                f"select count(*) from (from {theirs} except all from {ours})"
            ).fetchone()
            if only_ours != (0,) or only_theirs != (0,):
                differences[name] = (only_ours, only_theirs)
            row_counts[name] = con.execute(f"select count(*) from {ours}").fetchone()
    return {"differences": differences, "row_counts": row_counts}


def _copy_of(pipeline: Pipeline, directory: Path) -> Pipeline:
    """A pipeline in `directory` on a copy of `pipeline`'s warehouse."""
    copy = Pipeline(directory)
    shutil.copyfile(pipeline.warehouse, copy.warehouse)
    return copy


def _rebuilt_from_scratch(pipeline: Pipeline, directory: Path, *args: str) -> Pipeline:
    """A copy of `pipeline`'s warehouse in `directory`, rebuilt with `--full-refresh`."""
    copy = _copy_of(pipeline, directory)
    copy.dbt(*args, "--full-refresh")
    return copy


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    incremental = Pipeline(tmp_path_factory.mktemp("incremental"))
    with DemoServer(**SERVER, now=EARLY) as server:
        incremental.extract(server.url, server.token, EARLY)
    incremental.dbt("build")
    first, newest_days = _visit_shapes(incremental), _newest_days(incremental)
    with DemoServer(**SERVER, now=LATE) as server:
        incremental.extract(server.url, server.token, LATE)
    incremental.dbt("build")

    full_refresh = _rebuilt_from_scratch(
        incremental, tmp_path_factory.mktemp("full_refresh"), "build"
    )
    return Builds(incremental, full_refresh, first, _visit_shapes(incremental), newest_days)


def test_second_extraction_brought_new_days_and_grown_visits(builds: Builds) -> None:
    first, second = builds.first_extract, builds.second_extract
    assert first.keys() <= second.keys()
    new_days = {day for day, *_ in second.values()} - {day for day, *_ in first.values()}
    grown = [key for key in first if second[key][1] > first[key][1]]
    assert len(new_days) >= 1
    assert len(second) - len(first) > 100
    assert len(grown) >= 5


def test_second_build_replaced_the_changed_days_from_a_constant(builds: Builds) -> None:
    """Each visit model deleted every day from the first one a visit changed on (raw rows newer
    than the model's, where they were and are), the daily metrics from their lookback or the
    visit facts' start, moved back to the earliest action day of the visits from there on; the
    query filtered on that same date as a literal, read before the query ran."""
    models = _manifest_models(builds.incremental)
    incremental = sorted(n for n, m in models.items() if _by_day(m))
    assert {"fct_actions", "fct_site_daily_metrics"} <= set(incremental)
    assert incremental == sorted(builds.first_newest_days)
    starts = _rebuild_starts(builds)
    changed = min(_changed_days(builds)).isoformat()
    compiled = builds.incremental.workdir / "target" / "compiled" / "matomo_warehouse"
    for name in incremental:
        day, start = starts[name]
        assert day == models[name]["config"]["unique_key"], name
        if day == "visit_date_local":
            # A model without some visits (no conversions, say) has an older newest version.
            assert start <= changed, name
        query = (compiled / models[name]["original_file_path"]).read_text()
        assert f">= date '{start}'" in query, name
        assert f"max({day})" not in query, name
    # One row per visit: exactly the first changed day, later than a 3-day lookback's start.
    lookback = (builds.first_newest_days["fct_visits"] - dt.timedelta(days=3)).isoformat()
    assert starts["stg_matomo__visits"][1] == starts["fct_visits"][1] == changed > lookback

    newest = builds.first_newest_days["fct_site_daily_metrics"]
    facts = min(starts[name][1] for name in ("fct_visits", "fct_actions", "fct_conversions"))
    start = min(newest - dt.timedelta(days=3), dt.date.fromisoformat(facts))
    with builds.incremental.connect() as con:
        row = con.execute(
            "select min(action_date_local) from marts.fct_actions where visit_date_local >= ?",
            [start],
        ).fetchone()
    start = min(start, row[0]) if row and row[0] else start
    assert starts["fct_site_daily_metrics"] == ("report_date", start.isoformat())


def test_second_build_recomputed_the_recent_visitors(builds: Builds) -> None:
    """dim_visitors replaced the visitors of its recent window, read before the query as a
    timestamp literal: the same one in the query and in the delete."""
    target = builds.incremental.workdir / "target"
    path = Path("matomo_warehouse", "models", "marts", "dim_visitors.sql")
    since = re.compile(r"last_seen_at >= (timestamp '[0-9: .-]+')")
    query = (target / "compiled" / path).read_text()
    statements = (target / "run" / path).read_text()
    assert "recent_visitors" in query
    assert set(since.findall(query)) == set(since.findall(statements))
    assert len(set(since.findall(query))) == 1
    assert re.search(r"delete from \S+\s+where last_seen_at >= timestamp", statements)


FILTER = re.compile(r"(\w+) >= date '([0-9-]+)'")


def _test_filters(pipeline: Pipeline) -> dict[str, set[tuple[str, str]]]:
    """Per data test the last dbt command ran: the day filters in its compiled SQL."""
    results = json.loads((pipeline.workdir / "target" / "run_results.json").read_text())
    return {
        result["unique_id"]: set(FILTER.findall(result["compiled_code"] or ""))
        for result in results["results"]
        if result["unique_id"].startswith("test.")
    }


def _attached_models(pipeline: Pipeline) -> dict[str, str]:
    manifest = json.loads((pipeline.workdir / "target" / "manifest.json").read_text())
    return {
        key: (node.get("attached_node") or "").rsplit(".", 1)[-1]
        for key, node in manifest["nodes"].items()
        if node["resource_type"] == "test"
    }


def test_second_build_tested_only_the_rebuilt_days(builds: Builds) -> None:
    """The incremental build logged the first day it rebuilt per model, and the data tests of
    those models read from that day on; tests of models rebuilt whole read every row."""
    pipeline = builds.incremental
    results = json.loads((pipeline.workdir / "target" / "run_results.json").read_text())
    starts = _rebuild_starts(builds)
    with pipeline.connect() as con:
        log = con.execute(
            "select relation_name, invocation_id, day_column, cast(rebuilt_from as varchar) "
            "from main.matomo_rebuilt_days"
        ).fetchall()
    logged = {relation.rsplit(".", 1)[-1].strip('"'): rest for relation, *rest in log}
    assert logged.pop("dim_visitors")[:2] == [results["metadata"]["invocation_id"], "last_seen_at"]
    assert logged == {
        name: [results["metadata"]["invocation_id"], day, start]
        for name, (day, start) in starts.items()
    }

    attached = _attached_models(pipeline)
    filters = _test_filters(pipeline)
    scoped = {test for test, found in filters.items() if found}
    for test, found in filters.items():
        model = attached[test]
        if model in starts:
            assert found == {starts[model]}, test
        elif model:
            assert found == set(), test
    assert any(attached[test] == "fct_actions" for test in scoped)
    singular = "test.matomo_warehouse.assert_action_times_within_their_visit"
    assert filters[singular] == {starts["fct_actions"]}


def test_full_refresh_and_standalone_dbt_test_read_every_row(
    builds: Builds, tmp_path: Path
) -> None:
    assert all(found == set() for found in _test_filters(builds.full_refresh).values())
    later = _copy_of(builds.incremental, tmp_path)
    later.dbt("test", "--select", "fct_actions")
    filters = _test_filters(later)
    assert len(filters) >= 5
    assert all(found == set() for found in filters.values()), filters


def test_every_table_equals_a_full_refresh_row_for_row(builds: Builds) -> None:
    compared = _differences_from(builds.incremental, builds.full_refresh)
    assert compared["differences"] == {}
    row_counts = compared["row_counts"]
    assert {"fct_visits", "fct_actions", "fct_conversions", "fct_ecommerce_items"} <= set(
        row_counts
    )
    assert all(count != (0,) for count in row_counts.values()), row_counts


@dataclass(frozen=True)
class BackfillBuilds:
    incremental: Pipeline
    full_refresh: Pipeline
    day: dt.date  # the changed visit's day, the oldest of all


@pytest.fixture(scope="module")
def backfill_builds(builds: Builds, tmp_path_factory: pytest.TempPathFactory) -> BackfillBuilds:
    """After the two builds, a visit of the oldest day changes as a backfill would land it (a
    new user id, a newer extracted_at: what the extractor writes for a re-fetched visit that
    changed), far behind every lookback; then an incremental build, and a copy rebuilt whole."""
    incremental = _copy_of(builds.incremental, tmp_path_factory.mktemp("backfill"))
    with duckdb.connect(str(incremental.warehouse)) as con:
        found = con.execute(
            "select site_id, visit_id, visit_date from raw.matomo_visits "
            "order by visit_date, site_id, visit_id limit 1"
        ).fetchone()
        assert found is not None
        site, visit, day = found
        con.execute(
            "update raw.matomo_visits set extracted_at = ?, run_id = 'backfill', "
            """payload = json_merge_patch(payload, '{"userId": "backfilled"}')::varchar """
            "where site_id = ? and visit_id = ?",
            [dt.datetime.now(dt.UTC).replace(tzinfo=None), site, visit],
        )
    # Matomo's reports, captured before, do not know the new user: nb_users of that day differs.
    build = ("build", "--exclude", "assert_daily_metrics_match_matomo_reports")
    # No lookback: the visit is behind the daily metrics' and dim_visitors' own windows too
    # (the unit tests expect the default lookback). A first build leaves those two out, as a
    # failed or partial run would: the next one must still follow the facts' rebuild.
    options = ("--exclude-resource-type", "unit_test", "--vars", "{matomo_lookback_days: 0}")
    incremental.dbt(*build, "fct_site_daily_metrics", "dim_visitors", *options)
    incremental.dbt(*build, *options)
    full_refresh = _rebuilt_from_scratch(
        incremental, tmp_path_factory.mktemp("backfill_full_refresh"), *build
    )
    return BackfillBuilds(incremental, full_refresh, day)


def test_a_changed_old_visit_is_rebuilt_everywhere(
    builds: Builds, backfill_builds: BackfillBuilds
) -> None:
    """The visit models rebuilt from the changed visit's day; the daily metrics and the
    visitors, left out of that build, followed them in the next; every table equals a full
    refresh row for row."""
    day = backfill_builds.day.isoformat()
    assert day < min(newest.isoformat() for newest in builds.first_newest_days.values())
    with backfill_builds.incremental.connect() as con:
        # The earliest rebuild of each model since the two builds of the fixture `builds`.
        log = dict(
            con.execute(
                "select regexp_extract(relation_name, '\\.\"(\\w+)\"$', 1), "
                "cast(min(rebuilt_from) as varchar) from main.matomo_rebuilt_days "
                "where recorded_at > (select min(recorded_at) from main.matomo_rebuilt_days "
                "where relation_name like '%dim_visitors%') group by 1"
            ).fetchall()
        )
        users = con.execute(
            "select count(*) from marts.dim_visitors where user_id = 'backfilled'"
        ).fetchone()
    assert log["stg_matomo__visits"] == log["fct_visits"] == day
    assert log["fct_site_daily_metrics"] <= day
    assert users == (1,)
    compared = _differences_from(backfill_builds.incremental, backfill_builds.full_refresh)
    assert compared["differences"] == {}


def test_an_emptied_daily_metrics_or_visitors_table_is_rebuilt_whole(
    builds: Builds, tmp_path: Path
) -> None:
    """The daily metrics and dim_visitors, emptied (as `dbt run --empty` leaves them) after the
    visit facts logged a rebuild they have not followed yet, are rebuilt from the first day,
    not from the facts' start: equal to a full refresh."""
    pipeline = _copy_of(builds.incremental, tmp_path)
    options = ("--exclude-resource-type", "unit_test")
    pipeline.dbt("build", "--select", "fct_visits", "fct_actions", "fct_conversions", *options)
    with duckdb.connect(str(pipeline.warehouse)) as con:
        con.execute("delete from marts.fct_site_daily_metrics")
        con.execute("delete from marts.dim_visitors")
    pipeline.dbt("build", *options)
    assert _differences_from(pipeline, builds.full_refresh)["differences"] == {}


def test_the_rebuild_log_is_recorded_in_utc(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log is read in recorded order: a build in a zone 14 hours ahead of UTC records UTC,
    not its wall clock, so a later build elsewhere does not sort before it."""
    pipeline = _copy_of(builds.incremental, tmp_path)
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    pipeline.dbt("build", "--select", "fct_visits", "--exclude-resource-type", "unit_test")
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with pipeline.connect() as con:
        row = con.execute("select max(recorded_at) from main.matomo_rebuilt_days").fetchone()
    assert row is not None
    assert before <= row[0] <= after


RESET_SERVER: dict[str, Any] = {"sites": 2, "days": 4, "visits_per_day": 60}
BEFORE_RESET = "2026-11-03T12:00:00Z"  # Nov 1 and 2 closed, Nov 3 begun
AFTER_RESET = "2026-11-04T12:00:00Z"
LATER_START = "2026-11-03"
MODELS_AND_SEEDS = ("build", "--resource-type", "model", "--resource-type", "seed")


def _extract(pipeline: Pipeline, token: str, *args: str) -> None:
    subprocess.run(
        [str(BIN_DIR / "extract"), "--config", str(pipeline.workdir / "extract.toml"), *args],
        env={**os.environ, "MATOMO_TOKEN": token},
        cwd=pipeline.workdir,
        capture_output=True,
        check=True,
    )


@dataclass(frozen=True)
class ResetBuilds:
    incremental: Pipeline
    full_refresh: Pipeline
    days_before_reset: list[dt.date]  # days of fct_visits after the first build


def _visit_days(pipeline: Pipeline) -> list[dt.date]:
    with pipeline.connect() as con:
        rows = con.execute("select distinct visit_date_local from marts.fct_visits order by 1")
        return [day for (day,) in rows.fetchall()]


@pytest.fixture(scope="module")
def reset_builds(tmp_path_factory: pytest.TempPathFactory) -> ResetBuilds:
    """Built from Nov 1; then every site reset and extracted again from Nov 3 (a later start
    date), and built incrementally: Nov 1 and 2 are within the lookback and now empty."""
    incremental = Pipeline(tmp_path_factory.mktemp("reset"))
    with DemoServer(**RESET_SERVER, now=BEFORE_RESET) as server:
        incremental.extract(server.url, server.token, BEFORE_RESET)
    incremental.dbt(*MODELS_AND_SEEDS)
    days_before_reset = _visit_days(incremental)
    with DemoServer(**RESET_SERVER, now=AFTER_RESET) as server:
        incremental.extract(server.url, server.token, AFTER_RESET)  # writes the config
        for site in range(1, RESET_SERVER["sites"] + 1):
            _extract(incremental, server.token, "reset", "--site", str(site), "--yes")
        config = incremental.workdir / "extract.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(START_DATE, LATER_START), encoding="utf-8")
        _extract(incremental, server.token, "--as-of", AFTER_RESET, "run")
    incremental.dbt(*MODELS_AND_SEEDS)
    full_refresh = _rebuilt_from_scratch(
        incremental, tmp_path_factory.mktemp("reset_full_refresh"), *MODELS_AND_SEEDS
    )
    return ResetBuilds(incremental, full_refresh, days_before_reset)


def test_days_emptied_by_a_reset_are_cleared(reset_builds: ResetBuilds) -> None:
    later_start = dt.date.fromisoformat(LATER_START)
    assert min(reset_builds.days_before_reset) < later_start
    with reset_builds.incremental.connect() as con:
        raw_days = con.execute("select distinct visit_date from raw.matomo_visits order by 1")
        assert min(day for (day,) in raw_days.fetchall()) == later_start
    assert min(_visit_days(reset_builds.incremental)) == later_start
    compared = _differences_from(reset_builds.incremental, reset_builds.full_refresh)
    assert compared["differences"] == {}
    assert all(count != (0,) for count in compared["row_counts"].values()), compared
