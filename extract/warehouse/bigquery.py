"""BigQuery writer: NDJSON staged on local disk, load jobs into short-lived staging tables, then
MERGE (or delete + insert) together with the checkpoint in one multi-statement transaction.

Load jobs, not streaming inserts: they cost nothing and their rows can be changed by DML at once.
The raw dataset must exist (its location and access are the owner's decision); the tables in it
are created here. Raw visits are partitioned by visit_date and clustered by site_id, and every
statement on them names the partitions it may touch, so a window costs the bytes of a few days.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import google.auth
import orjson
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import bigquery

from extract.config import WarehouseSettings
from extract.errors import ConfigError, ExtractError, WarehouseError
from extract.state import (
    COMPLETE,
    NO_TRUNCATION,
    RunRecord,
    SiteStatus,
    WarehouseStatus,
    WindowCommit,
    WindowState,
)
from extract.warehouse import (
    BIGINT,
    DATE,
    INTEGER,
    JSON_TEXT,
    REPORT_ROWS,
    RUNS,
    STRING,
    TABLES,
    TIMESTAMP,
    VISITS,
    WINDOWS,
)

T = TypeVar("T")
_Value = str | int | dt.datetime | dt.date | None

_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
_TYPES = {
    INTEGER: "INT64",
    BIGINT: "INT64",
    STRING: "STRING",
    TIMESTAMP: "TIMESTAMP",
    DATE: "DATE",
    JSON_TEXT: "STRING",
}
# Day partitions and clustering of the big tables; the others are small.
_LAYOUT: dict[str, tuple[str, list[str]]] = {
    VISITS.name: ("visit_date", ["site_id"]),
    REPORT_ROWS.name: ("date", ["site_id", "method"]),
}
# A staging table left behind by a crash removes itself after this long.
_STAGE_PREFIX = "_extract_stage_"
_STAGE_LIFETIME = dt.timedelta(hours=6)
# The first call doubles as the connection check: an unreachable endpoint fails in seconds,
# not after the client's default ten minutes of retries.
_FIRST_CONTACT = Retry(timeout=30.0)
# Only these characters go into SQL literals (run ids, statuses): the emulator ignores query
# parameters inside scripts, so scripts carry their values inline.
_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.:+-]*")
_ROLES_HINT = (
    "the account needs BigQuery Data Editor on the dataset and BigQuery Job User on the project"
)


def _first_line(text: object) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else type(text).__name__


def _credentials(settings: WarehouseSettings) -> Credentials:
    """Application default credentials, a key file from config, or none for an emulator."""
    if settings.api_endpoint:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        if settings.credentials_file is not None:
            credentials, _ = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
                str(settings.credentials_file), scopes=_SCOPES
            )
        else:
            # It logs a warning for each place it looked in vain; the error below says it all.
            quiet = logging.getLogger("google.auth._default")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                credentials, _ = google.auth.default(scopes=_SCOPES)
            finally:
                quiet.setLevel(level)
    except auth_exceptions.DefaultCredentialsError as exc:
        if settings.credentials_file is not None:
            raise ConfigError(
                f"credentials_file {settings.credentials_file} in [warehouse] is not a usable "
                f"Google key file: {_first_line(exc)}"
            ) from None
        raise ConfigError(
            "no Google credentials for BigQuery: set credentials_file in [warehouse] to a "
            "service-account key file, or GOOGLE_APPLICATION_CREDENTIALS, or run "
            "`gcloud auth application-default login`"
        ) from None
    found: Credentials = credentials
    return found


def _error(where: str, action: str, exc: Exception) -> ExtractError:
    """One line for the user, with the fix where the cause is clear."""
    if isinstance(exc, auth_exceptions.RefreshError | api_exceptions.Unauthorized):
        return ConfigError(f"Google rejected the BigQuery credentials: {_first_line(exc)}")
    if isinstance(exc, api_exceptions.Forbidden):
        reasons = {error.get("reason") for error in exc.errors if isinstance(error, dict)}
        if reasons <= {"accessDenied", None}:
            return WarehouseError(
                f"permission denied on BigQuery {where} while {action}: "
                f"{_first_line(exc.message)}; {_ROLES_HINT}"
            )
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return WarehouseError(f"BigQuery {where}: {action} failed: {_first_line(exc.message)}")
    if isinstance(exc, api_exceptions.RetryError):
        exc = exc.cause if isinstance(exc.cause, Exception) else exc
    return WarehouseError(
        f"BigQuery {where}: {action} failed, BigQuery could not be reached: {_first_line(exc)}"
    )


def _literal(value: int | str | dt.date) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if not _SAFE_TEXT.fullmatch(value):
        raise ValueError(f"{value!r} cannot be written as an inline SQL literal")
    return f"'{value}'"


def _timestamp_text(epoch_seconds: int) -> str:
    return dt.datetime.fromtimestamp(epoch_seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _schema(columns: Sequence[tuple[str, str]]) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(name, _TYPES[kind]) for name, kind in columns]


def _stage_visits(commit: WindowCommit, out_path: Path) -> tuple[int, int]:
    """Write the window's visits as rows of the visits table: only those inside the window,
    and of a visit fetched twice only its newest copy (latest last action, then latest fetch).

    Returns (rows written, earliest firstActionTimestamp among them, 0 if one lacks it).
    """
    keys = commit.keys
    winner: dict[int, int] = {}  # visit id -> position of the copy that lands
    for position, (visit_id, last_action) in enumerate(
        zip(keys.visit_ids, keys.last_actions, strict=True)
    ):
        if commit.start <= last_action <= commit.cutoff:
            best = winner.get(visit_id)
            # Positions are in fetch order, so >= lets the later fetch win a tie.
            if best is None or last_action >= keys.last_actions[best]:
                winner[visit_id] = position
    common = {
        "site_id": commit.site_id,
        "visit_date": commit.day.isoformat(),
        "extracted_at": commit.extracted_at.astimezone(dt.UTC).isoformat(),
        "run_id": commit.run_id,
    }
    earliest = None
    position = 0
    with out_path.open("wb") as out:
        for page in commit.files:
            for visit in orjson.loads(page.read_bytes()):
                visit_id = keys.visit_ids[position]
                if winner.get(visit_id) == position:
                    truncated: int | None = keys.truncated[position]
                    row = {
                        **common,
                        "visit_id": visit_id,
                        "last_action_at": _timestamp_text(keys.last_actions[position]),
                        "action_count": keys.action_counts[position],
                        "truncated_actions_count": (
                            None if truncated == NO_TRUNCATION else truncated
                        ),
                        # Re-serialized: the same JSON as sent, though not byte for byte.
                        "payload": orjson.dumps(visit).decode(),
                    }
                    out.write(orjson.dumps(row) + b"\n")
                    first = str(visit.get("firstActionTimestamp", ""))
                    first_action = int(first) if first.isdigit() else 0
                    earliest = first_action if earliest is None else min(earliest, first_action)
                position += 1
    if position != len(keys):
        raise WarehouseError(
            f"site {commit.site_id} {commit.day}: the page files hold {position} visits, "
            f"their keys {len(keys)}"
        )
    return len(winner), earliest or 0


def _text_columns_as_strings(
    source: Path, out_path: Path, schema: Sequence[bigquery.SchemaField]
) -> int:
    """Copy an NDJSON file, turning JSON values in STRING columns into JSON text (BigQuery loads
    no object into a STRING column). Returns the number of rows."""
    strings = {field.name for field in schema if field.field_type == "STRING"}
    rows = 0
    with source.open("rb") as lines, out_path.open("wb") as out:
        for line in lines:
            if not line.strip():
                continue
            row: dict[str, Any] = orjson.loads(line)
            for name in strings & row.keys():
                if row[name] is not None and not isinstance(row[name], str):
                    row[name] = orjson.dumps(row[name]).decode()
            out.write(orjson.dumps(row) + b"\n")
            rows += 1
    return rows


class BigQueryWarehouse:
    def __init__(self, settings: WarehouseSettings) -> None:
        if not settings.project or not settings.dataset:
            raise ConfigError("target bigquery needs project and dataset in [warehouse]")
        self.dataset = f"{settings.project}.{settings.dataset}"
        endpoint = {"api_endpoint": settings.api_endpoint} if settings.api_endpoint else None
        self._client = bigquery.Client(
            project=settings.project, credentials=_credentials(settings), client_options=endpoint
        )
        try:
            dataset = self._client.get_dataset(self.dataset, retry=_FIRST_CONTACT)
        except api_exceptions.NotFound:
            self._close_client()
            raise WarehouseError(
                f"BigQuery dataset {self.dataset} does not exist: create it (bq mk --dataset "
                f"--location={settings.location or 'US'} {settings.project}:{settings.dataset}) "
                "or fix dataset in [warehouse]"
            ) from None
        except (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError, OSError) as exc:
            self._close_client()
            raise _error(self.dataset, "opening the dataset", exc) from None
        self.location = dataset.location
        if settings.location and (dataset.location or "").lower() != settings.location.lower():
            self._close_client()
            raise ConfigError(
                f"BigQuery dataset {self.dataset} is in {dataset.location}, not in "
                f"{settings.location} as location in [warehouse] says"
            )
        # Private to this process: nothing else writes here, unlike a shared BigQuery dataset.
        self.spool_root = Path(tempfile.mkdtemp(prefix="extract-bigquery-"))

    def __repr__(self) -> str:
        return f"BigQueryWarehouse({self.dataset!r})"

    def _table(self, name: str) -> str:
        return f"`{self.dataset}.{name}`"

    def _guard(self, action: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except (
            api_exceptions.GoogleAPIError,
            auth_exceptions.GoogleAuthError,
            requests.RequestException,
        ) as exc:
            raise _error(self.dataset, action, exc) from None

    def _query(
        self, sql: str, params: Mapping[str, tuple[str, _Value]] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run one statement or script; params are name -> (BigQuery type, value)."""
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(name, kind, value)
                for name, (kind, value) in (params or {}).items()
            ]
        )
        job = self._client.query(sql, job_config=config, location=self.location)
        return [tuple(row.values()) for row in job.result()]

    def _transaction(self, statements: Sequence[str], then: str = "") -> list[tuple[Any, ...]]:
        """Run statements as one script in one transaction (rolled back if any fails), then
        the query `then`, whose rows are returned."""
        body = ";\n".join(["BEGIN TRANSACTION", *statements, "COMMIT TRANSACTION", then])
        return self._query(body)

    @contextmanager
    def _staged(self, schema: Sequence[bigquery.SchemaField], ndjson: Path) -> Iterator[str]:
        """Load an NDJSON file into a new staging table; drop it afterwards."""
        name = f"{_STAGE_PREFIX}{uuid.uuid4().hex}"
        table = bigquery.Table(f"{self.dataset}.{name}", schema=list(schema))
        table.expires = dt.datetime.now(dt.UTC) + _STAGE_LIFETIME
        self._client.create_table(table)
        try:
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
                schema=table.schema,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            )
            with ndjson.open("rb") as data:
                job = self._client.load_table_from_file(
                    data, table, job_config=config, location=self.location
                )
            job.result()
            yield self._table(name)
        finally:
            self._client.delete_table(table, not_found_ok=True)

    def ensure_schema(self) -> None:
        def create() -> None:
            for spec in TABLES:
                table = bigquery.Table(f"{self.dataset}.{spec.name}", schema=_schema(spec.columns))
                if spec.name in _LAYOUT:
                    field, cluster = _LAYOUT[spec.name]
                    table.time_partitioning = bigquery.TimePartitioning(field=field)
                    table.clustering_fields = cluster
                self._client.create_table(table, exists_ok=True)

        self._guard("creating the raw tables", create)

    def commit_window(self, commit: WindowCommit) -> int:
        rows = self.spool_root / f"site{commit.site_id}_{commit.day.isoformat()}.ndjson"

        def land() -> int:
            landed, earliest = _stage_visits(commit, rows)
            checkpoint = [
                f"DELETE FROM {self._table(WINDOWS.name)} WHERE site_id = "
                f"{_literal(commit.site_id)} AND window_date = {_literal(commit.day)}",
                f"INSERT INTO {self._table(WINDOWS.name)} "
                f"({', '.join(name for name, _ in WINDOWS.columns)}) VALUES ("
                + ", ".join(
                    [
                        _literal(commit.site_id),
                        _literal(commit.day),
                        _literal(commit.status),
                        _literal(landed),
                        _literal(commit.pages),
                        _literal(commit.warnings),
                        "CURRENT_TIMESTAMP()",
                        _literal(commit.run_id),
                    ]
                )
                + ")",
            ]
            if not landed:
                self._transaction(checkpoint)
                return 0
            with self._staged(_schema(VISITS.columns), rows) as stage:
                self._transaction([self._merge_visits(commit, stage, earliest), *checkpoint])
            return landed

        try:
            return self._guard(f"landing site {commit.site_id} {commit.day}", land)
        finally:
            rows.unlink(missing_ok=True)

    def _merge_visits(self, commit: WindowCommit, stage: str, earliest_first_action: int) -> str:
        """Older copies of the staged visits are replaced, new visits inserted. An older copy
        with the same day and payload stays as it was, like on DuckDB (extract/warehouse/duckdb.py):
        a visit's extracted_at and run_id change only when the visit does.

        An older copy's last action lies between the visit's first action and this copy's, so
        its visit_date lies between the UTC date of the first action minus a day (time zones
        reach back at most a day) and this window's day: only those partitions are read.
        """
        oldest = dt.datetime.fromtimestamp(earliest_first_action, dt.UTC).date()
        columns = [name for name, _ in VISITS.columns]
        updates = ", ".join(
            f"{name} = source.{name}" for name in columns if name not in ("site_id", "visit_id")
        )
        return (
            f"MERGE {self._table(VISITS.name)} AS target USING {stage} AS source "
            "ON target.site_id = source.site_id AND target.visit_id = source.visit_id "
            f"AND target.site_id = {_literal(commit.site_id)} "
            f"AND target.visit_date BETWEEN {_literal(oldest - dt.timedelta(days=1))} "
            f"AND {_literal(commit.day)} "
            "WHEN MATCHED AND (target.visit_date != source.visit_date "
            "OR target.payload != source.payload) "
            f"THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) "
            f"VALUES ({', '.join(f'source.{name}' for name in columns)})"
        )

    def completed_windows(self, site_id: int) -> set[dt.date]:
        rows = self._guard(
            "reading checkpoints",
            lambda: self._query(
                f"SELECT window_date FROM {self._table(WINDOWS.name)} "
                "WHERE site_id = @site_id AND status = @status",
                {"site_id": ("INT64", site_id), "status": ("STRING", COMPLETE)},
            ),
        )
        return {row[0] for row in rows}

    def record_run(self, run: RunRecord) -> None:
        values: dict[str, tuple[str, _Value]] = {
            "run_id": ("STRING", run.run_id),
            "command": ("STRING", run.command),
            "started_at": ("TIMESTAMP", run.started_at),
            "finished_at": ("TIMESTAMP", run.finished_at),
            "status": ("STRING", run.status),
            "as_of": ("TIMESTAMP", run.as_of),
            "visits": ("INT64", run.visits),
            "report_rows": ("INT64", run.report_rows),
            "warnings": ("INT64", run.warnings),
            "error": ("STRING", run.error),
        }
        columns = [name for name, _ in RUNS.columns]
        # One statement is atomic by itself, and may take parameters (the error is free text).
        sql = (
            f"MERGE {self._table(RUNS.name)} AS target USING (SELECT "
            + ", ".join(f"@{name} AS {name}" for name in columns)
            + ") AS source ON target.run_id = source.run_id WHEN MATCHED THEN UPDATE SET "
            + ", ".join(f"{name} = source.{name}" for name in columns if name != "run_id")
            + f" WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ("
            + ", ".join(f"source.{name}" for name in columns)
            + ")"
        )
        self._guard("recording the run", lambda: self._query(sql, values))

    def replace_rows(
        self,
        table: str,
        key_columns: Sequence[str],
        ndjson_path: Path,
        keys_path: Path | None = None,
    ) -> int:
        # Delete + insert rather than MERGE: a key may stand for several rows (a report's rows).
        target = self._table(table)
        rows_path = self.spool_root / f"{table}.{uuid.uuid4().hex}.ndjson"
        keys_copy = self.spool_root / f"{table}.{uuid.uuid4().hex}.keys.ndjson"

        def replace() -> int:
            schema = self._client.get_table(f"{self.dataset}.{table}").schema
            key_schema = [field for field in schema if field.name in key_columns]
            names = ", ".join(field.name for field in schema)
            match = " AND ".join(
                f"target.{key} IS NOT DISTINCT FROM keys.{key}" for key in key_columns
            )
            inserted = _text_columns_as_strings(ndjson_path, rows_path, schema)
            with ExitStack() as stages:
                rows_stage = (
                    stages.enter_context(self._staged(schema, rows_path)) if inserted else ""
                )
                keys_stage = rows_stage
                if keys_path is not None:
                    has_keys = _text_columns_as_strings(keys_path, keys_copy, key_schema)
                    keys_stage = (
                        stages.enter_context(self._staged(key_schema, keys_copy))
                        if has_keys
                        else ""
                    )
                statements = []
                if keys_stage:
                    statements.append(
                        f"DELETE FROM {target} AS target "
                        f"WHERE EXISTS (SELECT 1 FROM {keys_stage} AS keys WHERE {match})"
                    )
                if rows_stage:
                    statements.append(
                        f"INSERT INTO {target} ({names}) SELECT {names} FROM {rows_stage}"
                    )
                if statements:
                    self._transaction(statements)
            return inserted

        try:
            return self._guard(f"replacing rows of {target}", replace)
        finally:
            rows_path.unlink(missing_ok=True)
            keys_copy.unlink(missing_ok=True)

    def status(self) -> WarehouseStatus:
        def read() -> WarehouseStatus:
            windows: dict[int, list[WindowState]] = {}
            for site_id, day, status, visits, warnings, completed_at in self._query(
                "SELECT site_id, window_date, status, visits, warnings, completed_at "
                f"FROM {self._table(WINDOWS.name)} ORDER BY site_id, window_date"
            ):
                windows.setdefault(site_id, []).append(
                    WindowState(day, status, visits, warnings, completed_at or _EPOCH)
                )
            counts = dict(
                self._query(
                    f"SELECT site_id, COUNT(*) FROM {self._table(VISITS.name)} GROUP BY site_id"
                )
            )
            sites = tuple(
                SiteStatus(site_id, tuple(windows.get(site_id, ())), int(counts.get(site_id, 0)))
                for site_id in sorted(set(windows) | set(counts))
            )
            run_count, last = self._last_run()
            return WarehouseStatus(sites=sites, last_run=last, runs=run_count)

        return self._guard("reading the status", read)

    def _last_run(self) -> tuple[int, RunRecord | None]:
        names = [name for name, _ in RUNS.columns]
        rows = self._query(
            f"SELECT COUNT(*) OVER (), {', '.join(names)} FROM {self._table(RUNS.name)} "
            "ORDER BY started_at DESC LIMIT 1"
        )
        if not rows:
            return 0, None
        count, *values = rows[0]
        run = dict(zip(names, values, strict=True))
        run["started_at"] = run["started_at"] or _EPOCH
        run["as_of"] = run["as_of"] or _EPOCH
        return int(count), RunRecord(**run)

    def reset_site(self, site_id: int) -> dict[str, int]:
        def delete() -> dict[str, int]:
            tables = [
                row[0]
                for row in self._query(
                    f"SELECT table_name FROM `{self.dataset}`.INFORMATION_SCHEMA.COLUMNS "
                    "WHERE column_name = 'site_id' "
                    f"AND NOT STARTS_WITH(table_name, '{_STAGE_PREFIX}') "
                    "ORDER BY table_name"
                )
            ]
            if not tables:
                return {}
            site = _literal(site_id)
            counted = " UNION ALL ".join(
                f"SELECT '{table}' AS table_name, COUNT(*) AS deleted "
                f"FROM {self._table(table)} WHERE site_id = {site}"
                for table in tables
            )
            # Counted inside the transaction, so the counts are exactly what was deleted.
            rows = self._transaction(
                [
                    f"CREATE TEMP TABLE _deleted AS {counted}",
                    *(
                        f"DELETE FROM {self._table(table)} WHERE site_id = {site}"
                        for table in tables
                    ),
                ],
                then="SELECT table_name, deleted FROM _deleted ORDER BY table_name",
            )
            return {str(table): int(deleted) for table, deleted in rows}

        return self._guard(f"resetting site {site_id}", delete)

    def _close_client(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]

    def compact(self) -> None:
        """Nothing to do: load jobs write whole columnar files, which BigQuery merges itself."""

    def close(self) -> None:
        self._close_client()
        shutil.rmtree(self.spool_root, ignore_errors=True)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
