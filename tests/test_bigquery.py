"""The BigQuery path executed end to end on a BigQuery emulator (bqemulator, a real process on
loopback, see tests/bigquery_emulator.py): `extract run` loads the demo Matomo into it with load
jobs and MERGE, a re-run stays exactly-once, `dbt build --target bigquery` runs on the result,
and every model it builds equals the DuckDB build from the same data. The emulator's gaps are
listed in EMULATOR_GAPS and asserted, so a fixed emulator shows up here (docs/bigquery.md).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from bigquery_emulator import BigQueryEmulator
from dbt_pipeline import BIN_DIR, PROJECT_DIR, Pipeline
from google.api_core import exceptions as api_exceptions

from extract.demo.server import DemoServer
from extract.errors import ConfigError, WarehouseError
from extract.warehouse import TABLES
from extract.warehouse.bigquery import _error

pytestmark = pytest.mark.slow

PROJECT = "matomo-test"
RAW = "raw"
AS_OF = "2026-11-04T12:00:00Z"  # the demo's 3 days are closed in both sites' zones
EARLY_AS_OF = "2026-11-03T15:00:00Z"  # Nov 3 open in both zones
DEMO = {"sites": 2, "days": 3, "visits_per_day": 20, "now": AS_OF}
# Differ between any two runs: when and by which run a row was written.
METADATA_COLUMNS = {"extracted_at", "run_id", "completed_at", "_extracted_at", "_extract_run_id"}

# Where bqemulator 1.4.0 fails on valid BigQuery SQL, node -> its error. Each node's
# descendants are skipped by dbt and so are not compared.
EMULATOR_GAPS = {
    # ORDER BY a WITH OFFSET column inside an ARRAY subquery nested in another subquery
    # (json_to_struct's ordered arrays): the translated query loses the offset column.
    "unit_test.matomo_warehouse.stg_matomo__actions"
    ".stg_matomo__actions_unnests_every_action_type": 'Referenced column "doc_1_offset" not found',
    "model.matomo_warehouse.stg_matomo__ecommerce_items": 'Referenced table "_t4" not found',
    # DATETIME(timestamp, time_zone) with a time zone that is not a literal (utc_offset_seconds)
    # is translated into a cast of the zone name to TIME.
    "test.matomo_warehouse.assert_visit_dates_follow_site_timezones": (
        "time field value out of range"
    ),
}


@dataclass(frozen=True)
class BigQueryRuns:
    pipeline: Pipeline
    env: dict[str, str]
    # The raw tables after each of three runs: at EARLY_AS_OF (Nov 3 still open, loaded up to
    # the finality cutoff), at AS_OF (every day closed), and at AS_OF again.
    early: dict[str, list[tuple[Any, ...]]]
    landed: dict[str, list[tuple[Any, ...]]]
    rerun: dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    with BigQueryEmulator(PROJECT, tmp_path_factory.mktemp("bqemulator")) as running:
        yield running


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoServer]:
    with DemoServer(**DEMO) as server:
        yield server


@pytest.fixture(scope="module")
def duckdb_build(tmp_path_factory: pytest.TempPathFactory, demo: DemoServer) -> Pipeline:
    pipeline = Pipeline(tmp_path_factory.mktemp("duckdb"))
    pipeline.extract(demo.url, demo.token, AS_OF)
    pipeline.dbt("build")
    return pipeline


def _bigquery_env(emulator: BigQueryEmulator) -> dict[str, str]:
    return {
        "BQ_API_ENDPOINT": emulator.endpoint,
        "BQ_PROJECT": PROJECT,
        "BQ_DATASET": "dbt_default",
        "MATOMO_RAW_SCHEMA": RAW,
    }


def _warehouse_toml(dataset: str) -> str:
    return f'target = "bigquery"\nproject = "{PROJECT}"\ndataset = "{dataset}"\n'


def _raw_tables(emulator: BigQueryEmulator, dataset: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every raw table's rows (columns in spec order), sorted."""
    tables = {}
    with emulator.client() as client:
        for spec in TABLES:
            columns = ", ".join(name for name, _ in spec.columns)
            rows = client.query(f"select {columns} from `{PROJECT}.{dataset}.{spec.name}`")
            tables[spec.name] = sorted((tuple(row.values()) for row in rows.result()), key=repr)
    return tables


@pytest.fixture(scope="module")
def bigquery_runs(
    tmp_path_factory: pytest.TempPathFactory, emulator: BigQueryEmulator, demo: DemoServer
) -> BigQueryRuns:
    pipeline = Pipeline(tmp_path_factory.mktemp("bigquery"))
    env = _bigquery_env(emulator)
    emulator.create_dataset(RAW)
    snapshots = []
    for as_of in (EARLY_AS_OF, AS_OF, AS_OF):
        pipeline.extract(demo.url, demo.token, as_of, _warehouse_toml(RAW), env)
        snapshots.append(_raw_tables(emulator, RAW))
    return BigQueryRuns(pipeline, env, *snapshots)


@pytest.fixture(scope="module")
def bigquery_build(bigquery_runs: BigQueryRuns) -> dict[str, dict[str, Any]]:
    """`dbt build --target bigquery`: it fails (on the emulator gaps only, see the test); the
    run results by node id."""
    with pytest.raises(AssertionError, match="exited 1"):
        bigquery_runs.pipeline.dbt("build", "--target", "bigquery", env=bigquery_runs.env)
    results = _artifact(bigquery_runs.pipeline, "run_results.json")["results"]
    return {result["unique_id"]: result for result in results}


def _artifact(pipeline: Pipeline, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pipeline.workdir / "target" / name).read_text())
    return data


def _without_metadata(spec_name: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    spec = next(spec for spec in TABLES if spec.name == spec_name)
    keep = [i for i, (name, _) in enumerate(spec.columns) if name not in METADATA_COLUMNS]
    return sorted((tuple(_plain(row[i]) for i in keep) for row in rows), key=repr)


def _plain(value: Any) -> Any:
    """One representation for both warehouses: naive UTC datetimes, numbers as rounded floats,
    JSON text as the parsed value."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return round(float(value), 6)
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --------------------------------------------------------------------------- extractor


def test_extract_lands_the_same_raw_rows_as_duckdb(
    bigquery_runs: BigQueryRuns, duckdb_build: Pipeline
) -> None:
    with duckdb_build.connect() as con:
        for spec in TABLES:
            if spec.name == "_extract_runs":
                continue  # each run's own log
            columns = ", ".join(f'"{name}"' for name, _ in spec.columns)
            duck = con.execute(f"select {columns} from raw.{spec.name}").fetchall()
            big = bigquery_runs.rerun[spec.name]
            assert _without_metadata(spec.name, big) == _without_metadata(spec.name, duck), spec
    visits = bigquery_runs.rerun["matomo_visits"]
    assert len(visits) > 100
    assert {row[0] for row in visits} == {1, 2}


def test_runs_replace_every_visit_exactly_once(bigquery_runs: BigQueryRuns) -> None:
    early, landed, rerun = bigquery_runs.early, bigquery_runs.landed, bigquery_runs.rerun
    for spec in TABLES:
        if spec.name != "_extract_runs":
            assert _without_metadata(spec.name, rerun[spec.name]) == _without_metadata(
                spec.name, landed[spec.name]
            ), spec.name
    # The early run saw Nov 3 open: partial windows and fewer visits, all kept once since.
    early_windows = {(row[0], row[1].isoformat()): row[2] for row in early["_extract_windows"]}
    assert early_windows[(1, "2026-11-03")] == early_windows[(2, "2026-11-03")] == "partial"
    early_visits = {(row[0], row[1]) for row in early["matomo_visits"]}
    visits = rerun["matomo_visits"]
    assert len({(row[0], row[1]) for row in visits}) == len(visits) > len(early_visits)
    assert early_visits <= {(row[0], row[1]) for row in visits}
    # The lookback re-fetched every day, so every visit is now the last run's copy.
    runs = sorted(rerun["_extract_runs"], key=lambda run: run[2])
    assert [run[4] for run in runs] == ["ok", "ok", "ok"]
    assert {row[7] for row in visits} == {runs[2][0]}
    windows = rerun["_extract_windows"]
    assert sorted((row[0], row[1].isoformat(), row[2]) for row in windows) == [
        (site, f"2026-11-0{day}", "complete" if day < 4 else "partial")
        for site in (1, 2)
        for day in (1, 2, 3, 4)
    ]
    assert sum(row[3] for row in windows) == len(visits)


def test_raw_visits_are_partitioned_by_day_and_clustered_by_site(
    bigquery_runs: BigQueryRuns, emulator: BigQueryEmulator
) -> None:
    with emulator.client() as client:
        visits = client.get_table(f"{PROJECT}.{RAW}.matomo_visits")
        staging = [t.table_id for t in client.list_tables(f"{PROJECT}.{RAW}")]
    assert visits.time_partitioning.field == "visit_date"
    assert visits.time_partitioning.type_ == "DAY"
    assert visits.clustering_fields == ["site_id"]
    assert [name for name in staging if name.startswith("_extract_stage_")] == []


def _cli(
    workdir: Path, warehouse: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = workdir / "extract.toml"
    config.write_text(f"[warehouse]\n{warehouse}", encoding="utf-8")
    variables = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BQ_", "GOOGLE_", "CLOUDSDK_"))
    }
    return subprocess.run(
        [str(BIN_DIR / "extract"), "--config", str(config), *args],
        env={**variables, **(env or {})},
        capture_output=True,
        text=True,
        cwd=workdir,
        check=False,
    )


def test_status_and_reset_work_on_bigquery(
    bigquery_runs: BigQueryRuns, emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    # A copy of the raw dataset, so the other tests keep theirs.
    emulator.create_dataset("reset_copy")
    with emulator.client() as client:
        for spec in TABLES:
            client.query(
                f"create table `{PROJECT}.reset_copy.{spec.name}` as "
                f"select * from `{PROJECT}.{RAW}.{spec.name}`"
            ).result()
    env = {"BQ_API_ENDPOINT": emulator.endpoint}
    status = _cli(tmp_path, _warehouse_toml("reset_copy"), "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    site_visits = {site["site_id"]: site["visits"] for site in report["sites"]}
    assert site_visits == {
        site: sum(1 for row in bigquery_runs.rerun["matomo_visits"] if row[0] == site)
        for site in (1, 2)
    }
    assert report["sites"][0]["loaded_through"] == "2026-11-03"
    assert report["runs"] == 3

    reset = _cli(tmp_path, _warehouse_toml("reset_copy"), "reset", "--site", "2", "--yes", env=env)
    assert reset.returncode == 0, reset.stderr
    site_rows = {
        spec.name: sum(1 for row in bigquery_runs.rerun[spec.name] if row[0] == 2)
        for spec in TABLES
        if spec.columns[0][0] == "site_id"
    }
    assert f"matomo_visits {site_rows['matomo_visits']:,}" in reset.stderr
    assert f"_extract_windows {site_rows['_extract_windows']}" in reset.stderr
    left = _raw_tables(emulator, "reset_copy")
    for table, rows in left.items():
        if table in site_rows:
            assert {row[0] for row in rows} <= {1}, table
            assert len(rows) == len(bigquery_runs.rerun[table]) - site_rows[table], table


# --------------------------------------------------------------------------- errors


def test_a_missing_dataset_is_one_line_and_exit_5(
    emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    result = _cli(
        tmp_path, _warehouse_toml("no_such_dataset"), "status",
        env={"BQ_API_ENDPOINT": emulator.endpoint},
    )  # fmt: skip
    assert result.returncode == 5
    assert result.stderr.count("\n") == 1
    assert f"BigQuery dataset {PROJECT}.no_such_dataset does not exist" in result.stderr
    assert "bq mk --dataset" in result.stderr


def test_missing_credentials_are_one_line_and_exit_2(tmp_path: Path) -> None:
    # No emulator endpoint, no key file, an empty home: application default credentials find
    # nothing (NO_GCE_CHECK skips google-auth's probe of the GCE metadata server).
    env = {"HOME": str(tmp_path), "NO_GCE_CHECK": "true"}
    result = _cli(tmp_path, _warehouse_toml(RAW), "status", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "no Google credentials for BigQuery" in result.stderr
    assert "gcloud auth application-default login" in result.stderr

    missing = tmp_path / "missing.json"
    result = _cli(
        tmp_path, _warehouse_toml(RAW) + f'credentials_file = "{missing}"\n', "status", env=env
    )
    assert result.returncode == 2
    assert f"credentials_file {missing} in [warehouse] is not a usable Google key file" in (
        result.stderr
    )
    garbage = tmp_path / "key.json"
    garbage.write_text('{"type": "service_account"}', encoding="utf-8")
    result = _cli(
        tmp_path, _warehouse_toml(RAW) + f'credentials_file = "{garbage}"\n', "status", env=env
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "is not a usable Google key file" in result.stderr


@pytest.mark.parametrize(
    ("warehouse", "message"),
    [
        ('target = "bigquery"\nproject = "matomo-test"\n', "target bigquery needs dataset"),
        ('target = "bigquery"\ndataset = "raw"\n', "target bigquery needs project"),
        (
            'target = "bigquery"\nproject = "matomo-test"\ndataset = "raw; drop"\n',
            "must be a BigQuery dataset id",
        ),
        (
            'target = "bigquery"\nproject = "My Project"\ndataset = "raw"\n',
            "is not a Google Cloud project id",
        ),
    ],
)
def test_bigquery_config_is_validated(warehouse: str, message: str, tmp_path: Path) -> None:
    result = _cli(tmp_path, warehouse, "status")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_google_errors_map_to_one_line_with_the_fix() -> None:
    # The emulator has no IAM, so these are Google's own exception types, built as the client
    # builds them from a 403 / 401 answer.
    denied = api_exceptions.Forbidden(
        "Access Denied: Table p:d.t: User does not have permission bigquery.tables.updateData",
        errors=[{"reason": "accessDenied", "message": "Access Denied"}],
    )
    error = _error("p.d", "landing site 1 2026-11-01", denied)
    assert isinstance(error, WarehouseError)
    assert str(error) == (
        "permission denied on BigQuery p.d while landing site 1 2026-11-01: Access Denied: "
        "Table p:d.t: User does not have permission bigquery.tables.updateData; the account "
        "needs BigQuery Data Editor on the dataset and BigQuery Job User on the project"
    )
    quota = api_exceptions.Forbidden("Quota exceeded", errors=[{"reason": "quotaExceeded"}])
    assert str(_error("p.d", "loading", quota)) == "BigQuery p.d: loading failed: Quota exceeded"
    expired = api_exceptions.Unauthorized("Request had invalid authentication credentials.")
    assert isinstance(_error("p.d", "loading", expired), ConfigError)


# --------------------------------------------------------------------------- dbt


def _descends_from_gap(node: str, parents: dict[str, list[str]]) -> bool:
    """Whether `node` depends on a gap node (or its model: a unit test failing skips it)."""
    gap_models = {gap.split(".")[2] for gap in EMULATOR_GAPS}
    seen: set[str] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in EMULATOR_GAPS or current.split(".")[-1] in gap_models:
            return True
        todo += parents.get(current, [])
    return False


def test_dbt_build_on_bigquery_fails_only_on_emulator_gaps(
    bigquery_build: dict[str, dict[str, Any]], bigquery_runs: BigQueryRuns
) -> None:
    errors = {node: r["message"] for node, r in bigquery_build.items() if r["status"] == "error"}
    assert set(errors) == set(EMULATOR_GAPS)
    for node, message in errors.items():
        assert EMULATOR_GAPS[node] in message, (node, message)
    manifest = _artifact(bigquery_runs.pipeline, "manifest.json")
    parents = manifest["parent_map"]
    skipped = [node for node, r in bigquery_build.items() if r["status"] == "skipped"]
    assert [node for node in skipped if not _descends_from_gap(node, parents)] == []
    statuses = [r["status"] for node, r in bigquery_build.items() if node not in errors]
    assert set(statuses) <= {"success", "pass", "skipped"}
    built = [node for node in bigquery_build if node.startswith("model.")]
    assert len(built) - len([node for node in skipped if node.startswith("model.")]) >= 15
    assert statuses.count("pass") >= 60
    # Day-partitioned, clustered, whole days overwritten (the same lookback as on DuckDB).
    incremental = [
        node["config"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    ]
    assert len(incremental) >= 9
    for config in incremental:
        assert config["incremental_strategy"] == "insert_overwrite"
        assert config["partition_by"] == {"field": "visit_date_local", "data_type": "date"}
        assert config["cluster_by"][0] == "site_id"


def _model_rows(rows: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(_plain(value) for value in row) for row in rows), key=repr)


def test_bigquery_models_equal_the_duckdb_models(
    bigquery_build: dict[str, dict[str, Any]],
    bigquery_runs: BigQueryRuns,
    duckdb_build: Pipeline,
    emulator: BigQueryEmulator,
) -> None:
    nodes = _artifact(bigquery_runs.pipeline, "manifest.json")["nodes"]
    built = [
        nodes[node]
        for node, result in bigquery_build.items()
        if node.split(".")[0] in ("model", "seed") and result["status"] == "success"
    ]
    compared: dict[str, int] = {}
    with emulator.client() as client, duckdb_build.connect() as con:
        for node in built:
            relation = f"{node['schema']}.{node['alias']}"
            duck = con.execute(f"select * from {relation}")
            duck_columns = [column[0] for column in duck.description]
            keep = [i for i, name in enumerate(duck_columns) if name not in METADATA_COLUMNS]
            duck_rows = _model_rows(tuple(row[i] for i in keep) for row in duck.fetchall())
            big = client.query(f"select * from `{PROJECT}.{relation}`").result()
            big_columns = [field.name for field in big.schema]
            assert big_columns == duck_columns, relation
            big_rows = _model_rows(tuple(row.values()[i] for i in keep) for row in big)
            assert big_rows == duck_rows, relation
            compared[node["name"]] = len(big_rows)
        fct_visits = client.get_table(f"{PROJECT}.marts.fct_visits")
    assert {"dim_sites", "dim_visitors", "fct_visit_custom_dimensions"} <= set(compared)
    assert compared["fct_visits"] == len(bigquery_runs.rerun["matomo_visits"])
    assert fct_visits.time_partitioning.field == "visit_date_local"


def test_every_compiled_bigquery_model_parses(
    bigquery_build: dict[str, dict[str, Any]], bigquery_runs: BigQueryRuns
) -> None:
    """sqlglot's BigQuery parser on every compiled node (dbt compile: each model's select) and
    every statement the build ran (the DDL around them), so syntax errors fail even where the
    emulator is lenient or never got to run a model."""
    pipeline = bigquery_runs.pipeline
    pipeline.dbt("compile", "--target", "bigquery", env=bigquery_runs.env)
    target = pipeline.workdir / "target"
    compiled = sorted((target / "compiled").rglob("*.sql"))
    executed = sorted((target / "run").rglob("*.sql"))
    models = [p for p in compiled if "/models/" in p.as_posix()]
    assert len(models) >= 25
    assert len(executed) >= 50
    for path in compiled + executed:
        statements = sqlglot.parse(path.read_text(encoding="utf-8"), read="bigquery")
        assert any(statements), path


def test_no_bigquery_sql_sits_behind_a_default_macro() -> None:
    """A `default__` body must raise, not carry SQL: BigQuery SQL there would also run on any
    other adapter, and DuckDB SQL would run on BigQuery."""
    macro = re.compile(r"{%-?\s*macro\s+(\w+)\(.*?%}(.*?){%-?\s*endmacro\s*-?%}", re.DOTALL)
    defaults = {}
    for path in (PROJECT_DIR / "macros").rglob("*.sql"):
        for name, body in macro.findall(path.read_text(encoding="utf-8")):
            if name.startswith("default__"):
                defaults[name] = body.strip()
    assert defaults
    carrying_sql = {
        name
        for name, body in defaults.items()
        if not re.fullmatch(r"{{-?\s*exceptions\.raise_compiler_error\(.*\)\s*-?}}", body, re.S)
    }
    assert carrying_sql == set()
