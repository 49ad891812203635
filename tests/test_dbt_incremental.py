"""Incremental builds equal a full refresh, row for row.

A demo Matomo seen at an early time (late-arriving tails on, so visits grow afterwards) is
extracted and built; the same traffic seen a day later (new days, grown visits) is extracted
into the same warehouse and built again, incrementally. A copy of that warehouse rebuilt with
`--full-refresh` must hold exactly the same rows in every model stored as a table.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

import pytest
from dbt_pipeline import Pipeline

from extract.demo.server import DemoServer

pytestmark = pytest.mark.slow

EARLY = "2026-11-03T22:58:00Z"
LATE = "2026-11-05T19:00:00Z"
SERVER: dict[str, Any] = {"sites": 5, "days": 6, "visits_per_day": 200, "fault_late": 0.5}

VisitShapes = dict[tuple[int, int], tuple[Any, int]]


@dataclass(frozen=True)
class Builds:
    incremental: Pipeline
    full_refresh: Pipeline
    first_extract: VisitShapes  # (site, visit) -> (report day, actions) after the first run
    second_extract: VisitShapes


def _visit_shapes(pipeline: Pipeline) -> VisitShapes:
    with pipeline.connect() as con:
        rows = con.execute(
            "select site_id, visit_id, visit_date, action_count from raw.matomo_visits"
        ).fetchall()
    return {(site, visit): (day, actions) for site, visit, day, actions in rows}


def _manifest_models(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    manifest = json.loads((pipeline.workdir / "target" / "manifest.json").read_text())
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    incremental = Pipeline(tmp_path_factory.mktemp("incremental"))
    with DemoServer(**SERVER, now=EARLY) as server:
        incremental.extract(server.url, server.token, EARLY)
    incremental.dbt("build")
    first = _visit_shapes(incremental)
    with DemoServer(**SERVER, now=LATE) as server:
        incremental.extract(server.url, server.token, LATE)
    incremental.dbt("build")

    full_refresh = Pipeline(tmp_path_factory.mktemp("full_refresh"))
    shutil.copyfile(incremental.warehouse, full_refresh.warehouse)
    full_refresh.dbt("build", "--full-refresh")
    return Builds(incremental, full_refresh, first, _visit_shapes(incremental))


def test_second_extraction_brought_new_days_and_grown_visits(builds: Builds) -> None:
    first, second = builds.first_extract, builds.second_extract
    assert first.keys() <= second.keys()
    new_days = {day for day, _ in second.values()} - {day for day, _ in first.values()}
    grown = [key for key in first if second[key][1] > first[key][1]]
    assert len(new_days) >= 1
    assert len(second) - len(first) > 100
    assert len(grown) >= 5


def test_second_build_was_incremental(builds: Builds) -> None:
    models = _manifest_models(builds.incremental)
    incremental = sorted(
        n for n, m in models.items() if m["config"]["materialized"] == "incremental"
    )
    assert "fct_actions" in incremental
    run_dir = builds.incremental.workdir / "target" / "run" / "matomo_warehouse"
    for name in incremental:
        (path,) = run_dir.rglob(f"{name}.sql")
        assert "delete from" in path.read_text().lower(), name


def test_every_table_equals_a_full_refresh_row_for_row(builds: Builds) -> None:
    models = _manifest_models(builds.incremental)
    tables = sorted(
        (m["schema"], name)
        for name, m in models.items()
        if m["config"]["materialized"] in ("incremental", "table")
    )
    differences, row_counts = {}, {}
    with builds.incremental.connect() as con:
        con.execute(f"attach '{builds.full_refresh.warehouse}' as full_refresh (read_only)")
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
    assert differences == {}
    assert {"fct_visits", "fct_actions", "fct_conversions", "fct_ecommerce_items"} <= set(
        row_counts
    )
    assert all(count != (0,) for count in row_counts.values()), row_counts
