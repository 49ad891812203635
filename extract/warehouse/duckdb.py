"""DuckDB writer (the embedded default): NDJSON spool files in, one transaction per window out."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import duckdb

from extract.errors import WarehouseError
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
    RUNS,
    STRING,
    TABLES,
    TIMESTAMP,
    VISITS,
    WINDOWS,
    TableSpec,
)

log = logging.getLogger(__name__)

_SPECS = {spec.name: spec for spec in TABLES}

T = TypeVar("T")

_TYPES = {
    INTEGER: "INTEGER",
    BIGINT: "BIGINT",
    STRING: "VARCHAR",
    TIMESTAMP: "TIMESTAMP",
    DATE: "DATE",
    JSON_TEXT: "VARCHAR",
}
# Largest single visit (or row) accepted: a visit is a few kB, a 500-action one about 1 MB.
_MAX_OBJECT_BYTES = 16 * 1024 * 1024
# DuckDB's defaults (80 % of RAM, all cores) let its memory grow with the data loaded; a window
# needs little, and one thread leaves the other cores to the HTTP workers.
_SETTINGS: dict[str, str | bool | int | float | list[str]] = {"memory_limit": "128MB", "threads": 1}
# Each checkpoint rewrites the table's last, partly filled row group. With DuckDB's default of
# 122,880 rows of multi-kB payloads that is hundreds of MB rewritten (and held in memory) per
# window commit, growing with the table; small row groups keep every commit's cost flat.
# compact() merges them into default-sized ones once the run is over.
_ROW_GROUP_SIZE = 2048

# Streamed straight into the table. The payload is each array element of the spooled response as
# Matomo sent it; its typed keys come from Python (which parsed the page anyway), aligned by
# position, so DuckDB never parses the JSON. One thread reads the files in fetch order, so rowid
# order is fetch order.
_INSERT_WINDOW = """
insert into {visits}
select
    ?::integer,
    keys.visit_id,
    make_timestamp(keys.last_action * 1000000),
    ?::date,
    keys.action_count,
    nullif(keys.truncated, {no_truncation}),
    ?::timestamp,
    ?::varchar,
    page.json
from read_json_objects(?, format = 'array', maximum_object_size = {max_object}) as page
positional join (
    select
        unnest(?::bigint[]) as visit_id,
        unnest(?::bigint[]) as last_action,
        unnest(?::integer[]) as action_count,
        unnest(?::integer[]) as truncated
) as keys
where keys.last_action between ? and ?
"""
# This commit's rows: its run and fetch time (each window has its own extracted_at).
_THIS_COMMIT = "site_id = ? and run_id = ? and extracted_at = ?"
# Rows of the site in this commit's visit id range that other commits wrote.
_OLDER_COPIES = f"site_id = ? and visit_id between ? and ? and not ({_THIS_COMMIT})"
# A re-fetched visit that has not changed (same day, same payload) keeps its older row, with the
# run and fetch time that first landed it: a row's extracted_at says when its content last
# changed, and dbt rebuilds only the days of rows newer than what it has (the lookback start in
# macros/incremental_by_day.sql). So the new copy is the one that goes. Payloads are compared by
# their 128-bit MD5, so the join holds digests, not a window's payloads (hundreds of MB for a
# busy site's day, over the connection's memory limit).
_DELETE_UNCHANGED = """
delete from {visits}
where rowid in (
    select fetched.rowid
    from (
        select rowid, visit_id, visit_date, md5_number(payload) as digest
        from {visits}
        where {this}
    ) as fetched
    join (
        select visit_id, visit_date, md5_number(payload) as digest
        from {visits}
        where {older}
    ) as kept
        on kept.visit_id = fetched.visit_id
        and kept.visit_date = fetched.visit_date
        and kept.digest = fetched.digest
)
"""
# Older copies of this commit's visits (earlier runs, other windows) give way to the new fetch.
_DELETE_OLDER = """
delete from {visits}
where {older}
    and visit_id in (select visit_id from {visits} where {this})
"""
# A visit that grew while its window was paged was fetched twice: keep the copy with the latest
# last action, then the latest fetch (highest rowid). Only key columns are sorted, never payloads.
_DELETE_STALE_COPIES = """
delete from {visits}
where rowid in (
    select rowid from (
        select
            rowid,
            row_number() over (
                partition by visit_id order by last_action_at desc, rowid desc
            ) as copy
        from {visits}
        where {this}
    )
    where copy > 1
)
"""


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """DuckDB TIMESTAMP is zone-less: bind UTC wall time, never an aware (session-zone) value."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value is not None else None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None else None


class DuckDBWarehouse:
    def __init__(self, path: Path, schema: str = "raw", *, create: bool = True) -> None:
        self.path = path
        self.schema = schema
        if not create and not path.exists():
            raise WarehouseError(f"no DuckDB warehouse at {path} yet: run `extract run` first")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(config=_SETTINGS)
            self._attach(f"row_group_size {_ROW_GROUP_SIZE}")
        except (duckdb.Error, OSError) as exc:
            detail = str(exc).splitlines()[0]
            if "lock" in detail.lower():
                raise WarehouseError(
                    f"the DuckDB file {path} is in use by another process (another extract run, or "
                    "dbt?); wait for it to finish"
                ) from None
            raise WarehouseError(f"cannot open the DuckDB file {path}: {detail}") from None
        # We hold the file lock now, so spool files left here can only be from a crashed run.
        self.spool_root = path.parent / ".extract" / f"{path.name}.spool"
        shutil.rmtree(self.spool_root, ignore_errors=True)
        self.spool_root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r})"

    def _attach(self, options: str = "") -> None:
        literal = str(self.path).replace("'", "''")  # ATTACH takes no parameters
        self._con.execute(f"attach '{literal}' as warehouse {f'({options})' if options else ''}")
        self._con.execute("use warehouse")

    def _detach(self) -> None:
        self._con.execute("use memory")
        self._con.execute("detach warehouse")

    def compact(self) -> None:
        """Merge the run's small row groups into DuckDB's default size.

        Any other process that writes the file with the default size (dbt) would otherwise do it
        at its next checkpoint, a hundred row groups at a time, rewriting payloads for seconds
        on every build until the backlog is gone. Here it is one pass over this run's rows.
        """

        def merge() -> None:
            self._detach()
            self._attach()
            # Vacuuming happens at a checkpoint, and DuckDB skips a checkpoint with nothing to
            # write: an empty catalog change gives it one. No task cap, every core (the HTTP
            # workers are done).
            self._con.execute(f"set threads = {os.cpu_count() or 1}")
            self._con.execute("set max_vacuum_tasks = 1000000000")
            self._con.execute(f"create table {self._table('_compaction')} (i integer)")
            self._con.execute(f"drop table {self._table('_compaction')}")
            self._con.execute("checkpoint warehouse")
            self._detach()
            self._con.execute(f"set threads = {_SETTINGS['threads']}")
            self._con.execute("reset max_vacuum_tasks")
            self._attach(f"row_group_size {_ROW_GROUP_SIZE}")

        self._guard("compacting the raw tables", merge)

    def _table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    def _guard(self, action: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except duckdb.Error as exc:
            detail = str(exc).splitlines()[0]
            raise WarehouseError(f"DuckDB {self.path}: {action} failed: {detail}") from None

    def _transaction(self, action: str, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        def run() -> T:
            self._con.execute("begin transaction")
            try:
                result = work(self._con)
            except BaseException:
                self._con.execute("rollback")
                raise
            self._con.execute("commit")
            return result

        return self._guard(action, run)

    def ensure_schema(self) -> None:
        def create(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f'create schema if not exists "{self.schema}"')
            for spec in TABLES:
                con.execute(self._ddl(spec))

        self._transaction("creating the raw schema", create)

    def _ddl(self, spec: TableSpec) -> str:
        columns = ", ".join(f'"{name}" {_TYPES[kind]}' for name, kind in spec.columns)
        return f"create table if not exists {self._table(spec.name)} ({columns})"

    def commit_window(self, commit: WindowCommit) -> int:
        visits = self._table(VISITS.name)
        windows = self._table(WINDOWS.name)

        def land(con: duckdb.DuckDBPyConnection) -> int:
            landed = 0
            if commit.files:
                extracted_at = _naive_utc(commit.extracted_at)
                this = [commit.site_id, commit.run_id, extracted_at]
                keys = commit.keys
                con.execute(
                    _INSERT_WINDOW.format(
                        visits=visits, max_object=_MAX_OBJECT_BYTES, no_truncation=NO_TRUNCATION
                    ),
                    [
                        commit.site_id,
                        commit.day,
                        extracted_at,
                        commit.run_id,
                        [str(path) for path in commit.files],
                        keys.visit_ids.tolist(),
                        keys.last_actions.tolist(),
                        keys.action_counts.tolist(),
                        keys.truncated.tolist(),
                        commit.start,
                        commit.cutoff,
                    ],
                )
                row = con.execute(
                    "select count(*), count(distinct visit_id), min(visit_id), max(visit_id) "
                    f"from {visits} where {_THIS_COMMIT}",
                    this,
                ).fetchone()
                assert row is not None
                fetched, landed, low, high = row
                if landed < fetched:
                    con.execute(_DELETE_STALE_COPIES.format(visits=visits, this=_THIS_COMMIT), this)
                # The id range lets DuckDB skip row groups by their min/max instead of probing all.
                older = [commit.site_id, low, high, *this]
                for statement, params in (
                    (_DELETE_UNCHANGED, [*this, *older]),
                    (_DELETE_OLDER, [*older, *this]),
                ):
                    sql = statement.format(visits=visits, this=_THIS_COMMIT, older=_OLDER_COPIES)
                    con.execute(sql, params)
            con.execute(
                f"delete from {windows} where site_id = ? and window_date = ?",
                [commit.site_id, commit.day],
            )
            con.execute(
                f"insert into {windows} values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    commit.site_id,
                    commit.day,
                    commit.status,
                    landed,
                    commit.pages,
                    commit.warnings,
                    _naive_utc(dt.datetime.now(dt.UTC)),
                    commit.run_id,
                ],
            )
            return int(landed)

        return self._transaction(f"landing site {commit.site_id} {commit.day}", land)

    def completed_windows(self, site_id: int) -> set[dt.date]:
        rows = self._guard(
            "reading checkpoints",
            lambda: self._con.execute(
                f"select window_date from {self._table(WINDOWS.name)} "
                "where site_id = ? and status = ?",
                [site_id, COMPLETE],
            ).fetchall(),
        )
        return {row[0] for row in rows}

    def record_run(self, run: RunRecord) -> None:
        runs = self._table(RUNS.name)

        def upsert(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"delete from {runs} where run_id = ?", [run.run_id])
            con.execute(
                f"insert into {runs} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run.run_id,
                    run.command,
                    _naive_utc(run.started_at),
                    _naive_utc(run.finished_at),
                    run.status,
                    _naive_utc(run.as_of),
                    run.visits,
                    run.report_rows,
                    run.warnings,
                    run.error,
                ],
            )

        self._transaction("recording the run", upsert)

    def replace_rows(
        self,
        table: str,
        key_columns: Sequence[str],
        ndjson_path: Path,
        keys_path: Path | None = None,
    ) -> int:
        target = self._table(table)

        def replace(con: duckdb.DuckDBPyConnection) -> int:
            # From the spec, not information_schema: querying that costs DuckDB ~100 MB of RSS.
            columns = [(name, _TYPES[kind]) for name, kind in _SPECS[table].columns]
            types = ", ".join(f"\"{name}\": '{kind}'" for name, kind in columns)
            con.execute(
                "create or replace temp table _rows as select * from read_json(?, "
                f"format = 'newline_delimited', columns = {{{types}}}, "
                f"maximum_object_size = {_MAX_OBJECT_BYTES})",
                [str(ndjson_path)],
            )
            match = " and ".join(
                f'{target}."{key}" is not distinct from keys."{key}"' for key in key_columns
            )
            key_list = ", ".join(f'"{key}"' for key in key_columns)
            keys = "_rows"
            if keys_path is not None:
                key_types = ", ".join(
                    f"\"{name}\": '{kind}'" for name, kind in columns if name in key_columns
                )
                keys = (
                    f"read_json(?, format = 'newline_delimited', columns = {{{key_types}}})"
                )
            con.execute(
                f"delete from {target} using (select distinct {key_list} from {keys}) as keys "
                f"where {match}",
                [] if keys_path is None else [str(keys_path)],
            )
            con.execute(f"insert into {target} by name select * from _rows")
            count = con.execute("select count(*) from _rows").fetchone()
            con.execute("drop table _rows")
            return int(count[0]) if count else 0

        return self._transaction(f"replacing rows of {target}", replace)

    def status(self) -> WarehouseStatus:
        def read() -> WarehouseStatus:
            windows: dict[int, list[WindowState]] = {}
            for site_id, day, status, visits, warnings, completed_at in self._con.execute(
                "select site_id, window_date, status, visits, warnings, completed_at "
                f"from {self._table(WINDOWS.name)} order by site_id, window_date"
            ).fetchall():
                windows.setdefault(site_id, []).append(
                    WindowState(day, status, visits, warnings, _aware(completed_at) or _EPOCH)
                )
            counts = dict(
                self._con.execute(
                    f"select site_id, count(*) from {self._table(VISITS.name)} group by site_id"
                ).fetchall()
            )
            sites = tuple(
                SiteStatus(site_id, tuple(windows.get(site_id, ())), int(counts.get(site_id, 0)))
                for site_id in sorted(set(windows) | set(counts))
            )
            run_count, last = self._last_run()
            return WarehouseStatus(sites=sites, last_run=last, runs=run_count)

        return self._guard("reading the status", read)

    def _last_run(self) -> tuple[int, RunRecord | None]:
        runs = self._table(RUNS.name)
        count = self._con.execute(f"select count(*) from {runs}").fetchone()
        row = self._con.execute(
            "select run_id, command, started_at, as_of, finished_at, status, visits, report_rows, "
            f"warnings, error from {runs} order by started_at desc limit 1"
        ).fetchone()
        if row is None:
            return 0, None
        run_id, command, started, as_of, finished, status, visits, report_rows, warnings, error = (
            row
        )
        record = RunRecord(
            run_id=run_id,
            command=command,
            started_at=_aware(started) or _EPOCH,
            as_of=_aware(as_of) or _EPOCH,
            finished_at=_aware(finished),
            status=status,
            visits=visits,
            report_rows=report_rows,
            warnings=warnings,
            error=error,
        )
        return (int(count[0]) if count else 0), record

    def reset_site(self, site_id: int) -> dict[str, int]:
        def delete(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
            tables = con.execute(
                "select table_name from information_schema.columns "
                "where table_schema = ? and column_name = 'site_id' order by table_name",
                [self.schema],
            ).fetchall()
            deleted: dict[str, int] = {}
            for (table,) in tables:
                row = con.execute(
                    f"delete from {self._table(table)} where site_id = ?", [site_id]
                ).fetchone()
                deleted[table] = int(row[0]) if row else 0
            return deleted

        return self._transaction(f"resetting site {site_id}", delete)

    def close(self) -> None:
        self._con.close()
        shutil.rmtree(self.spool_root, ignore_errors=True)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
