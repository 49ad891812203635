"""The dbt project as a whole, built by the real pipeline on the synthetic demo Matomo: five
sites in five timezones (a fixed offset `UTC-3` and a half-hour one among them), every data and
unit test passing, docs generated, and the house rules checked on the manifest: every model
and column described, a primary-key test on every model, dispatch macros complete."""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_pipeline import BY_DAY_MODELS, PROJECT_DIR, Pipeline

from extract.demo.server import DemoServer

pytestmark = pytest.mark.slow

SITES = 5  # UTC, America/New_York, Europe/Berlin, Asia/Kolkata, UTC-3
AS_OF = "2026-11-09T12:00:00Z"  # the server's 8 days are over in every zone


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    pipeline = Pipeline(tmp_path_factory.mktemp("project"))
    with DemoServer(sites=SITES, days=8, visits_per_day=40, now=AS_OF) as server:
        pipeline.extract(server.url, server.token, AS_OF)
    pipeline.dbt("build")
    # `docs generate` writes its own run_results.json: keep the build's beside it.
    target = pipeline.workdir / "target"
    (target / "run_results.json").replace(target / "build_results.json")
    pipeline.dbt("docs", "generate")
    return pipeline


def _artifact(pipeline: Pipeline, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pipeline.workdir / "target" / name).read_text())
    return data


def _project_nodes(manifest: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        key: node
        for key, node in {**manifest["nodes"], **manifest["sources"]}.items()
        if node["resource_type"] == kind and node["package_name"] == "matomo_warehouse"
    }


def test_every_test_ran_and_passed(built: Pipeline) -> None:
    results = _artifact(built, "build_results.json")["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert {s for s in statuses.values()} <= {"success", "pass"}
    unit_tests = [u for u in statuses if u.startswith("unit_test.")]
    data_tests = [u for u in statuses if u.startswith("test.")]
    assert len(unit_tests) >= 10
    assert len(data_tests) >= 71
    assert "test.matomo_warehouse.assert_visit_dates_follow_site_timezones" in statuses
    assert "test.matomo_warehouse.assert_action_times_within_their_visit" in statuses


def test_every_site_and_timezone_is_modelled(built: Pipeline) -> None:
    with built.connect() as con:
        sites = dict(
            con.execute(
                "select sites.timezone, count(*) from marts.fct_visits as visits "
                "join marts.dim_sites as sites using (site_id) group by 1"
            ).fetchall()
        )
        actions_without_time = con.execute(
            "select count(*) from marts.fct_actions where action_at is null"
        ).fetchone()
    assert set(sites) == {"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "UTC-3"}
    assert min(sites.values()) > 100
    assert actions_without_time == (0,)


def test_every_model_and_column_is_described(built: Pipeline) -> None:
    manifest = _artifact(built, "manifest.json")
    catalog = _artifact(built, "catalog.json")
    undocumented = []
    for kind in ("model", "seed", "source"):
        for key, node in _project_nodes(manifest, kind).items():
            if not node["description"].strip():
                undocumented.append(key)
            described = {n: c["description"].strip() for n, c in node["columns"].items()}
            in_catalog = catalog["nodes" if kind != "source" else "sources"].get(key)
            assert in_catalog is not None, f"{key} is missing from the catalog"
            for column in in_catalog["columns"]:
                if not described.get(column.lower()):
                    undocumented.append(f"{key}.{column}")
    assert undocumented == []
    assert manifest["docs"]["doc.matomo_warehouse.__overview__"]["block_contents"]


def test_every_stored_model_has_a_primary_key_test(built: Pipeline) -> None:
    """Tables and incremental models; a view is tested where its rows are stored."""
    manifest = _artifact(built, "manifest.json")
    tests_by_model: dict[str, set[str]] = defaultdict(set)
    for node in _project_nodes(manifest, "test").values():
        attached = node.get("attached_node")
        if attached:
            tests_by_model[attached].add((node.get("test_metadata") or {}).get("name", ""))
    missing = [
        key
        for key, model in _project_nodes(manifest, "model").items()
        if model["config"]["materialized"] != "view" and "primary_key" not in tests_by_model[key]
    ]
    assert missing == []


def test_key_and_not_null_tests_fail_on_bad_rows(built: Pipeline, tmp_path: Path) -> None:
    """primary_key and not_null_columns each report the rows they exist for: a duplicated
    visit, nulls in two of fct_visits' not-null columns, and on a composite key
    (fct_visit_custom_dimensions) a duplicated pair and a pair with a null part."""
    broken = Pipeline(tmp_path)
    shutil.copyfile(built.warehouse, broken.warehouse)
    with duckdb.connect(str(broken.warehouse)) as con:
        con.execute("insert into marts.fct_visits select * from marts.fct_visits limit 1")
        con.execute(
            "update marts.fct_visits set referrer_id = null, visit_date_local = null "
            "where visit_id in (select visit_id from marts.fct_visits limit 3)"
        )
        dimensions = "marts.fct_visit_custom_dimensions"
        con.execute(
            f"update {dimensions} set custom_dimension_id = null "
            f"where rowid = (select max(rowid) from {dimensions})"
        )
        con.execute(
            f"insert into {dimensions} "
            f"select * from {dimensions} where custom_dimension_id is not null limit 1"
        )
    tests = (
        "fct_visits,test_name:primary_key",
        "fct_visits,test_name:not_null_columns",
        "fct_visit_custom_dimensions,test_name:primary_key",
    )
    with pytest.raises(AssertionError, match="exited 1"):
        broken.dbt("test", "--select", *tests)
    results = sorted(
        (result["unique_id"].split(".")[2], result["status"], result["failures"])
        for result in _artifact(broken, "run_results.json")["results"]
        if result["unique_id"].startswith("test.")
    )
    assert [(name.split("_fct_visit")[0], *rest) for name, *rest in results] == [
        ("not_null_columns", "fail", 2),  # referrer_id and visit_date_local
        ("primary_key", "fail", 2),  # the duplicated pair, the null part
        ("primary_key", "fail", 1),
    ]


def test_incremental_models_replace_whole_days_or_recent_visitors(built: Pipeline) -> None:
    manifest = _artifact(built, "manifest.json")
    configs = {
        node["name"]: node["config"] for node in _project_nodes(manifest, "model").values()
    }
    incremental = {name for name, c in configs.items() if c["materialized"] == "incremental"}
    assert incremental == {*BY_DAY_MODELS, "dim_visitors"}
    for name, day in BY_DAY_MODELS.items():
        assert configs[name]["incremental_strategy"] == "replace_lookback_days"
        assert configs[name]["unique_key"] == day
    assert configs["dim_visitors"]["incremental_strategy"] == "replace_recent_keys"
    assert configs["dim_visitors"]["unique_key"] == "site_visitor_id"
    assert all(configs[name]["on_schema_change"] == "fail" for name in incremental)


def test_dispatched_macros_have_duckdb_bigquery_and_default_bodies() -> None:
    dispatched, defined = set(), set()
    for path in (PROJECT_DIR / "macros").rglob("*.sql"):
        text = path.read_text(encoding="utf-8")
        dispatched |= set(re.findall(r"adapter\.dispatch\('(\w+)'\)", text))
        defined |= set(re.findall(r"{%\s*macro\s+(\w+)\(", text))
    assert dispatched
    incomplete = {
        name
        for name in dispatched
        if not {f"duckdb__{name}", f"bigquery__{name}", f"default__{name}"} <= defined
    }
    assert incomplete == set()


def test_docs_site_is_generated(built: Pipeline) -> None:
    assert Path(built.workdir / "target" / "index.html").stat().st_size > 0
    catalog = _artifact(built, "catalog.json")
    assert "model.matomo_warehouse.rpt_matomo_reconciliation" in catalog["nodes"]
