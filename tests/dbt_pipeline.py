"""The real pipeline for the dbt tests: demo Matomo -> `extract run` -> `dbt`, in a tmp dir.

Everything runs as the user would run it: the extractor and dbt as subprocesses of this
virtualenv, talking to a demo Matomo on loopback, with dbt's target/ and logs/ kept in the
test's directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

PROJECT_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
FIXTURES = PROJECT_DIR / "tests" / "fixtures" / "matomo-5"
# The vendored captures were taken at 2026-11-22 08:47 UTC: every day through Nov 21 closed.
CAPTURE_TIME = "2026-11-22T08:47:00Z"
START_DATE = "2026-11-01"

# Models incremental by whole days -> their day column (on DuckDB and BigQuery alike).
BY_DAY_MODELS = {
    "stg_matomo__visits": "visit_date_local", "stg_matomo__actions": "visit_date_local",
    "stg_matomo__ecommerce_items": "visit_date_local",
    "stg_matomo__visit_custom_dimensions": "visit_date_local", "fct_visits": "visit_date_local",
    "fct_actions": "visit_date_local", "fct_conversions": "visit_date_local",
    "fct_ecommerce_items": "visit_date_local", "fct_visit_custom_dimensions": "visit_date_local",
    "fct_site_daily_metrics": "report_date",
}  # fmt: skip
PROFILE = """\
matomo_warehouse:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{ env_var('DUCKDB_PATH') }}"
      threads: 2
    bigquery:  # a BigQuery emulator (tests/bigquery_emulator.py): any token will do
      type: bigquery
      method: oauth-secrets
      token: emulator
      project: "{{ env_var('BQ_PROJECT', 'unset') }}"
      dataset: "{{ env_var('BQ_DATASET', 'unset') }}"
      api_endpoint: "{{ env_var('BQ_API_ENDPOINT', '') }}"
      job_retries: 0
      threads: 4
"""


def _run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command[:3])} exited {result.returncode}\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@dataclass(frozen=True)
class Pipeline:
    """One warehouse file and the config, profile and dbt artifacts around it."""

    workdir: Path

    @property
    def warehouse(self) -> Path:
        return self.workdir / "matomo.duckdb"

    def extract(
        self,
        url: str,
        token: str,
        as_of: str,
        warehouse: str = "",
        env: Mapping[str, str] | None = None,
    ) -> str:
        """`extract run` from the demo Matomo at `url`, pretending it is `as_of`; `warehouse`
        replaces the [warehouse] section (default: this directory's DuckDB file)."""
        config = self.workdir / "extract.toml"
        config.write_text(
            "[matomo]\n"
            f'url = "{url}"\n'
            f'start_date = "{START_DATE}"\n'
            "requests_per_minute = 60000\n"
            "\n[warehouse]\n"
            + (warehouse or f'path = "{self.warehouse}"\n'),
            encoding="utf-8",
        )
        variables = {**os.environ, **(env or {}), "MATOMO_TOKEN": token}
        command = [str(BIN_DIR / "extract"), "--config", str(config), "--as-of", as_of, "run"]
        return _run(command, variables, self.workdir)

    def dbt(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """A dbt command on this warehouse (`env` adds variables); fails the test if dbt fails."""
        (self.workdir / "profiles.yml").write_text(PROFILE, encoding="utf-8")
        variables = {
            **os.environ,
            "DUCKDB_PATH": str(self.warehouse),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **(env or {}),
        }
        command = [
            str(BIN_DIR / "dbt"),
            *args,
            "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(self.workdir),
            "--target-path", str(self.workdir / "target"),
            "--log-path", str(self.workdir / "logs"),
        ]
        return _run(command, variables, self.workdir)

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.warehouse), read_only=True)
