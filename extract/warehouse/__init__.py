"""The Warehouse protocol every writer implements, the raw table shapes, and make_warehouse().

Data reaches a warehouse only as NDJSON files staged on local disk, so a writer's job is always
"load these files, de-duplicate, replace by key, record the checkpoint — atomically". DuckDB does
that in one transaction; a BigQuery writer fits the same calls with a load job into a staging table
plus a MERGE and the checkpoint in one multi-statement transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from extract.config import WarehouseSettings
from extract.errors import ConfigError
from extract.state import RunRecord, WarehouseStatus, WindowCommit

# Portable column types; each writer maps them (DuckDB: INTEGER BIGINT VARCHAR TIMESTAMP DATE; JSON
# text is VARCHAR on DuckDB and STRING on BigQuery so dbt macros read it the same way on both).
INTEGER = "integer"
BIGINT = "bigint"
STRING = "string"
TIMESTAMP = "timestamp"
DATE = "date"
JSON_TEXT = "json"


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]


VISITS = TableSpec(
    "matomo_visits",
    (
        ("site_id", INTEGER),
        ("visit_id", BIGINT),
        ("last_action_at", TIMESTAMP),
        ("visit_date", DATE),
        ("action_count", INTEGER),
        ("truncated_actions_count", INTEGER),
        ("extracted_at", TIMESTAMP),
        ("run_id", STRING),
        ("payload", JSON_TEXT),
    ),
)
SITES = TableSpec(
    "matomo_sites",
    (
        ("site_id", INTEGER),
        ("name", STRING),
        ("timezone", STRING),
        ("payload", JSON_TEXT),
        ("extracted_at", TIMESTAMP),
        ("run_id", STRING),
    ),
)
WINDOWS = TableSpec(
    "_extract_windows",
    (
        ("site_id", INTEGER),
        ("window_date", DATE),
        ("status", STRING),
        ("visits", INTEGER),
        ("pages", INTEGER),
        ("warnings", INTEGER),
        ("completed_at", TIMESTAMP),
        ("run_id", STRING),
    ),
)
RUNS = TableSpec(
    "_extract_runs",
    (
        ("run_id", STRING),
        ("command", STRING),
        ("started_at", TIMESTAMP),
        ("finished_at", TIMESTAMP),
        ("status", STRING),
        ("as_of", TIMESTAMP),
        ("visits", BIGINT),
        ("report_rows", BIGINT),
        ("warnings", INTEGER),
        ("error", STRING),
    ),
)
GOALS = TableSpec(
    "matomo_goals",
    (
        ("site_id", INTEGER),
        ("goal_id", INTEGER),
        ("payload", JSON_TEXT),
        ("extracted_at", TIMESTAMP),
        ("run_id", STRING),
    ),
)
CUSTOM_DIMENSIONS = TableSpec(
    "matomo_custom_dimensions",
    (
        ("site_id", INTEGER),
        ("custom_dimension_id", INTEGER),
        ("payload", JSON_TEXT),
        ("extracted_at", TIMESTAMP),
        ("run_id", STRING),
    ),
)
REPORT_ROWS = TableSpec(
    "matomo_report_rows",
    (
        ("site_id", INTEGER),
        ("method", STRING),
        ("params_key", STRING),
        ("params", JSON_TEXT),
        ("period", STRING),
        ("date", DATE),
        ("date_label", STRING),
        ("row_index", INTEGER),
        ("row_path", STRING),
        ("label", STRING),
        ("metrics", JSON_TEXT),
        ("row", JSON_TEXT),
        ("extracted_at", TIMESTAMP),
        ("run_id", STRING),
    ),
)
INSTANCE = TableSpec(
    "matomo_instance",
    (
        ("url", STRING),
        ("version", STRING),
        ("payload", JSON_TEXT),
        ("extracted_at", TIMESTAMP),
        ("run_id", STRING),
    ),
)
# Every table ensure_schema() creates, so the dbt sources exist from the first run on even
# before a table receives rows; other extractors append their specs here.
TABLES: list[TableSpec] = [
    VISITS, SITES, GOALS, CUSTOM_DIMENSIONS, INSTANCE, REPORT_ROWS, WINDOWS, RUNS
]


class Warehouse(Protocol):
    spool_root: Path  # local directory for NDJSON staging files, emptied when the writer opens

    def ensure_schema(self) -> None:
        """Create the raw schema and every table in TABLES if missing."""

    def commit_window(self, commit: WindowCommit) -> int:
        """Atomically land a window's visits (newest copy per visit, same keys replaced) and its
        checkpoint row; return the number of distinct visits landed."""

    def completed_windows(self, site_id: int) -> set[dt.date]:
        """Days of `site_id` whose checkpoint says complete."""

    def record_run(self, run: RunRecord) -> None:
        """Insert or update the run's row in the run log."""

    def replace_rows(
        self,
        table: str,
        key_columns: Sequence[str],
        ndjson_path: Path,
        keys_path: Path | None = None,
    ) -> int:
        """Atomically delete the rows of `table` whose `key_columns` values occur in the NDJSON
        file, then insert the file's rows (one object per line, keys = column names; JSON-text
        columns as JSON values or strings). Return the number of rows inserted.

        With `keys_path` (NDJSON of key-column objects), the rows deleted are those whose key
        values occur there instead: a key with no rows left in the data file loses its rows."""

    def status(self) -> WarehouseStatus:
        """Per-site checkpoints and visit counts, plus the latest run."""

    def reset_site(self, site_id: int) -> dict[str, int]:
        """Delete every raw row and checkpoint of `site_id`; return rows deleted per table."""

    def compact(self) -> None:
        """Leave the raw tables in the layout readers expect, after a run that wrote them."""

    def close(self) -> None: ...


def make_warehouse(settings: WarehouseSettings, *, create: bool = True) -> Warehouse:
    """Open the configured warehouse (imports the writer lazily: each pulls in its own client).

    `create=False` is for commands that only read or reset: a missing warehouse is then an error.
    """
    if settings.target == "duckdb":
        from extract.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(settings.path, settings.schema, create=create)
    if settings.target == "bigquery":
        from extract.warehouse.bigquery import BigQueryWarehouse

        return BigQueryWarehouse(settings)
    raise ConfigError(
        f"target {settings.target!r} in [warehouse] is not available in this version; use duckdb"
    )
