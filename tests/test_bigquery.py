"""The BigQuery path executed end to end on a BigQuery emulator (bqemulator, a real process on
loopback, see tests/bigquery_emulator.py): `extract run` loads the demo Matomo into it with load
jobs and MERGE, a re-run stays exactly-once, `dbt build --target bigquery` succeeds on the
result, and every model and seed it builds equals the DuckDB build from the same data; a second,
incremental run reads only the lookback days. The emulator's gap on that run is asserted in
INCREMENTAL_RUN_GAP, so a fixed emulator shows up here (docs/bigquery.md).
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

import duckdb
import pytest
import sqlglot
from bigquery_emulator import BigQueryEmulator
from dbt_pipeline import BIN_DIR, BY_DAY_MODELS, PROJECT_DIR, Pipeline
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

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

# bqemulator 1.4.0 cannot run dbt-bigquery's own insert_overwrite script on an existing table:
# it mistranslates `array_agg(distinct day IGNORE NULLS)`, after the model's new slice has been
# written to a temporary table. Every incremental model whose parents ran fails with this.
INCREMENTAL_RUN_GAP = "Required keyword: 'this' missing for <class 'sqlglot.expressions.core.Not'>"
# The incremental run's lookback, shorter than the 3 days of data so that it selects a part.
INCREMENTAL_LOOKBACK_DAYS = 1
# Incremental on BigQuery (dim_visitors, incremental on DuckDB, is a table here).
INCREMENTAL_MODELS = BY_DAY_MODELS
# Those that read the raw visits, not another incremental model.
RAW_INCREMENTAL_MODELS = {name for name in INCREMENTAL_MODELS if name.startswith("stg_")}


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
    """`dbt build --target bigquery` (fails the test unless it succeeds): results by node id."""
    bigquery_runs.pipeline.dbt("build", "--target", "bigquery", env=bigquery_runs.env)
    return _run_results(bigquery_runs.pipeline)


def _run_results(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    results = _artifact(pipeline, "run_results.json")["results"]
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
    # The lookback re-fetched every day, but a visit found unchanged keeps its row: the last
    # run, which saw no change, wrote none; Nov 1 and 2 are still the first run's copies.
    runs = sorted(rerun["_extract_runs"], key=lambda run: run[2])
    assert [run[4] for run in runs] == ["ok", "ok", "ok"]
    writers = {row[7] for row in visits}
    assert runs[0][0] in writers
    assert runs[2][0] not in writers
    assert {row[7] for row in visits if row[3].day < 3} == {runs[0][0]}
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


def _project_nodes(pipeline: Pipeline, *types: str) -> dict[str, dict[str, Any]]:
    """The manifest's nodes (and unit tests) of these resource types, by node id."""
    manifest = _artifact(pipeline, "manifest.json")
    nodes = {**manifest["nodes"], **manifest["unit_tests"]}
    return {node: info for node, info in nodes.items() if info["resource_type"] in types}


def test_dbt_build_on_bigquery_succeeds(
    bigquery_build: dict[str, dict[str, Any]], bigquery_runs: BigQueryRuns
) -> None:
    ran = _project_nodes(bigquery_runs.pipeline, "model", "seed", "test", "unit_test")
    hooks = {node for node in bigquery_build if node.startswith("operation.")}
    assert set(bigquery_build) == set(ran) | hooks
    statuses = {node: result["status"] for node, result in bigquery_build.items()}
    assert {node for node, status in statuses.items() if status not in ("success", "pass")} == set()
    assert sum(1 for node in ran if node.startswith("unit_test.")) >= 10
    assert sum(1 for node in ran if node.startswith("test.")) >= 71
    # Day-partitioned, clustered, whole days overwritten from a fixed lookback (DuckDB: from
    # the first changed day).
    incremental = {
        node["name"]: node["config"]
        for node in _project_nodes(bigquery_runs.pipeline, "model").values()
        if node["config"]["materialized"] == "incremental"
    }
    assert set(incremental) == set(INCREMENTAL_MODELS)
    for name, config in incremental.items():
        assert config["incremental_strategy"] == "insert_overwrite"
        assert config["partition_by"] == {"field": INCREMENTAL_MODELS[name], "data_type": "date"}
        assert config["cluster_by"][0] == "site_id"


def _model_rows(rows: Iterator[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(_plain(value) for value in row) for row in rows), key=repr)


def _compare(
    client: bigquery.Client, con: duckdb.DuckDBPyConnection, big_table: str, duck_query: str
) -> int:
    """Asserts the BigQuery table holds the rows of the DuckDB query (all columns, in order,
    except extraction metadata); returns their count."""
    duck = con.execute(duck_query)
    duck_columns = [column[0] for column in duck.description]
    keep = [i for i, name in enumerate(duck_columns) if name not in METADATA_COLUMNS]
    duck_rows = _model_rows(tuple(row[i] for i in keep) for row in duck.fetchall())
    big = client.query(f"select * from `{PROJECT}.{big_table}`").result()
    assert [field.name for field in big.schema] == duck_columns, big_table
    big_rows = _model_rows(tuple(row.values()[i] for i in keep) for row in big)
    assert big_rows == duck_rows, big_table
    return len(big_rows)


def test_bigquery_models_equal_the_duckdb_models(
    bigquery_build: dict[str, dict[str, Any]],
    bigquery_runs: BigQueryRuns,
    duckdb_build: Pipeline,
    emulator: BigQueryEmulator,
) -> None:
    built = _project_nodes(bigquery_runs.pipeline, "model", "seed")
    assert len(built) >= 25
    compared: dict[str, int] = {}
    with emulator.client() as client, duckdb_build.connect() as con:
        for node in built.values():
            relation = f"{node['schema']}.{node['alias']}"
            compared[node["name"]] = _compare(client, con, relation, f"select * from {relation}")
        fct_visits = client.get_table(f"{PROJECT}.marts.fct_visits")
    assert compared["fct_visits"] == len(bigquery_runs.rerun["matomo_visits"])
    # Every mart holds rows, so none is equal merely by being empty.
    marts = [node["name"] for node in built.values() if node["schema"] == "marts"]
    assert {"fct_actions", "fct_conversions", "fct_ecommerce_items", "fct_site_daily_metrics",
            "fct_goal_daily_metrics", "rpt_matomo_reconciliation"} <= set(marts)  # fmt: skip
    assert [name for name in marts if compared[name] == 0] == []
    assert fct_visits.time_partitioning.field == "visit_date_local"


def test_every_compiled_bigquery_model_parses(
    bigquery_build: dict[str, dict[str, Any]], bigquery_runs: BigQueryRuns
) -> None:
    """sqlglot's BigQuery parser on every node the build compiled (each model's select, every
    data and unit test) and every statement it ran (the DDL around them), so syntax errors
    fail even where the emulator is lenient. (The incremental forms: see below.)"""
    target = bigquery_runs.pipeline.workdir / "target"
    compiled = sorted((target / "compiled").rglob("*.sql"))
    executed = sorted((target / "run").rglob("*.sql"))
    assert len([p for p in compiled if "/models/" in p.as_posix()]) >= 25
    assert len(executed) >= 50
    for path in compiled + executed:
        statements = sqlglot.parse(path.read_text(encoding="utf-8"), read="bigquery")
        assert any(statements), path


@dataclass(frozen=True)
class IncrementalRun:
    compiled: dict[str, str]  # every incremental model's SQL, compiled as incremental
    results: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def incremental_run(
    bigquery_build: dict[str, dict[str, Any]], bigquery_runs: BigQueryRuns
) -> IncrementalRun:
    """The incremental models again, now that they exist, with a lookback shorter than the
    data: compiled, then run (which fails on the emulator's gap, see the test)."""
    pipeline, env = bigquery_runs.pipeline, bigquery_runs.env
    options = (
        "--target", "bigquery", "--select", "config.materialized:incremental",
        "--vars", f"{{matomo_lookback_days: {INCREMENTAL_LOOKBACK_DAYS}}}",
    )  # fmt: skip
    pipeline.dbt("compile", *options, env=env)
    compiled = {
        path.stem: path.read_text(encoding="utf-8")
        for path in (pipeline.workdir / "target" / "compiled").rglob("*.sql")
        if path.stem in INCREMENTAL_MODELS and path.parent.suffix != ".yml"  # not fixtures
    }
    with pytest.raises(AssertionError, match="exited 1"):
        pipeline.dbt("run", *options, env=env)
    return IncrementalRun(compiled, _run_results(pipeline))


def test_incremental_models_filter_on_a_constant_that_prunes(
    incremental_run: IncrementalRun,
) -> None:
    """The lookback filter is dbt-bigquery's script variable, a constant BigQuery prunes
    partitions with, never a subquery on the model itself (which cannot prune)."""
    assert set(incremental_run.compiled) == set(INCREMENTAL_MODELS)
    lookback = re.compile(
        r"visit_date_local >= coalesce\(\s*date_sub\(_dbt_max_partition, "
        rf"interval {INCREMENTAL_LOOKBACK_DAYS} day\)"
    )
    for model, sql in incremental_run.compiled.items():
        # (fct_site_daily_metrics: inside the subquery of its start, the only part that prunes)
        assert lookback.search(sql), model
        assert f"`{model}`" not in sql, model
        assert any(sqlglot.parse(sql, read="bigquery")), model


def _ancestors(node: str, parents: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(parents.get(node, []))
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo += parents.get(current, [])
    return found


def test_an_incremental_run_reads_only_the_lookback_days(
    incremental_run: IncrementalRun,
    bigquery_runs: BigQueryRuns,
    duckdb_build: Pipeline,
    emulator: BigQueryEmulator,
) -> None:
    results = incremental_run.results
    failed = {node: r["message"] for node, r in results.items() if r["status"] == "error"}
    # The incremental models on the raw visits ran; the ones on them were skipped.
    assert {node.split(".")[-1] for node in failed} == RAW_INCREMENTAL_MODELS
    for node, message in failed.items():
        assert INCREMENTAL_RUN_GAP in message, (node, message)
    parents = _artifact(bigquery_runs.pipeline, "manifest.json")["parent_map"]
    for node, result in results.items():
        if result["status"] == "skipped":
            assert _ancestors(node, parents) & set(failed), node
        else:
            assert result["status"] in ("success", "error"), node
    # Each one's new slice, left in its temporary table by the failed script: exactly the
    # DuckDB model's rows of the newest day and the lookback before it, a part of the model.
    with emulator.client() as client, duckdb_build.connect() as con:
        slices = {
            table.table_id.split("__dbt_tmp")[0]: f"staging.{table.table_id}"
            for table in client.list_tables(f"{PROJECT}.staging")
            if "__dbt_tmp" in table.table_id
        }
        assert set(slices) == RAW_INCREMENTAL_MODELS
        for model, table in slices.items():
            lookback = (
                f"select * from staging.{model} where visit_date_local >= "
                f"(select max(visit_date_local) - {INCREMENTAL_LOOKBACK_DAYS} "
                f"from staging.{model})"
            )
            rows = _compare(client, con, table, lookback)
            total = con.execute(f"select count(*) from staging.{model}").fetchone()
            assert total is not None
            assert 0 < rows < total[0], model


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
