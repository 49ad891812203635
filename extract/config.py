"""Settings from `extract.toml` plus environment variables; each problem is one ConfigError line.

Precedence: environment over the file over defaults. The token comes only from MATOMO_TOKEN or a
token file, never from the config file or the command line (shell history, `ps`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from extract.errors import ConfigError

DEFAULT_CONFIG = Path("extract.toml")


@dataclass(frozen=True)
class MatomoSettings:
    url: str  # normalised endpoint, always ending in /index.php
    sites: tuple[int, ...] | None  # None = every site the token can view
    start_date: dt.date | None  # None = each site's creation date
    token: str = field(repr=False)
    requests_per_minute: int = 200
    concurrency: int = 8
    page_size: int = 1000
    timeout_seconds: float = 120.0
    retry_budget_seconds: float = 600.0
    finality_minutes: int = 40
    lookback_days: int = 3


@dataclass(frozen=True)
class WarehouseSettings:
    target: str = "duckdb"
    path: Path = Path("matomo.duckdb")
    schema: str = "raw"
    project: str | None = None
    dataset: str | None = None
    location: str | None = None
    credentials_file: Path | None = None
    # BQ_API_ENDPOINT: a local BigQuery emulator (anonymous credentials), as in the dbt profile.
    api_endpoint: str | None = None

    @property
    def where(self) -> str:
        """Where the raw tables live, for messages."""
        if self.target == "bigquery":
            return f"bigquery {self.project}.{self.dataset}"
        return str(self.path)


@dataclass(frozen=True)
class ReportSpec:
    method: str
    params: Mapping[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportsSettings:
    enabled: bool = True  # false: raw visits and metadata only
    lookback_days: int = 3
    period: str = "day"
    extra: tuple[ReportSpec, ...] = ()


@dataclass(frozen=True)
class Settings:
    matomo: MatomoSettings
    warehouse: WarehouseSettings
    reports: ReportsSettings
    source: str  # where the settings came from, for messages


_MATOMO_KEYS = {
    "url",
    "sites",
    "start_date",
    "token_file",
    "requests_per_minute",
    "concurrency",
    "page_size",
    "timeout_seconds",
    "retry_budget_seconds",
    "finality_minutes",
    "lookback_days",
}
_WAREHOUSE_KEYS = {"target", "path", "schema", "project", "dataset", "location", "credentials_file"}
_REPORTS_KEYS = {"enabled", "lookback_days", "period", "extra"}
# Report request parameters the extractor owns (site, dates, raw numbers, every row).
RESERVED_REPORT_PARAMS = frozenset(
    {"module", "method", "format", "token_auth", "idSite", "period", "date", "format_metrics",
     "filter_limit", "filter_offset"}
)
_SECTIONS = {"matomo": _MATOMO_KEYS, "warehouse": _WAREHOUSE_KEYS, "reports": _REPORTS_KEYS}
_TARGETS = ("duckdb", "bigquery")


def normalize_url(raw: str) -> str:
    """`https://h/matomo`, `https://h/matomo/`, `https://h/matomo/index.php` -> one endpoint."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"Matomo url {raw.strip()!r} is not an http(s) URL; "
            "set url in [matomo] (or MATOMO_URL), e.g. https://analytics.example.com/matomo/"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            "Matomo url must be the plain address of Matomo, without a query string, fragment or "
            "credentials; the token goes in MATOMO_TOKEN"
        )
    path = parts.path
    if not path.endswith("/index.php"):
        path = path.rstrip("/") + "/index.php"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def load_settings(
    config_path: Path | None, env: Mapping[str, str], *, require_matomo: bool = True
) -> Settings:
    """Read the config file (explicit path, EXTRACT_CONFIG, or ./extract.toml if present) and env.

    `require_matomo=False` is for commands that only touch the warehouse (status, reset).
    """
    path, explicit = _config_path(config_path, env)
    data: dict[str, Any] = {}
    if path.exists():
        data = _read_toml(path)
    elif explicit:
        raise ConfigError(f"config file {path} not found; create it or point --config at it")
    source = path.name if path.exists() else "the environment"
    _check_keys(data, source)
    matomo = _matomo(dict(data.get("matomo", {})), env, source, require_matomo)
    warehouse = _warehouse(dict(data.get("warehouse", {})), env, source)
    reports = _reports(dict(data.get("reports", {})), source)
    return Settings(matomo=matomo, warehouse=warehouse, reports=reports, source=source)


def _config_path(config_path: Path | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    if config_path is not None:
        return config_path, True
    if env.get("EXTRACT_CONFIG"):
        return Path(env["EXTRACT_CONFIG"]), True
    return DEFAULT_CONFIG, False


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def _check_keys(data: Mapping[str, Any], source: str) -> None:
    for section, value in data.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"unknown section [{section}] in {source}{_suggest(section, _SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"[{section}] in {source} must be a table")
        for key in value:
            if key == "token" and section == "matomo":
                raise ConfigError(
                    f"the token does not belong in {source}: remove 'token' from [matomo] and set "
                    "MATOMO_TOKEN or token_file"
                )
            if key not in _SECTIONS[section]:
                raise ConfigError(
                    f"unknown key '{key}' in [{section}] of {source}"
                    f"{_suggest(key, _SECTIONS[section])}"
                )


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _matomo(
    raw: dict[str, Any], env: Mapping[str, str], source: str, require: bool
) -> MatomoSettings:
    where = f"in [matomo] of {source}"
    url_text = env.get("MATOMO_URL") or raw.get("url")
    if url_text is not None and not isinstance(url_text, str):
        raise ConfigError(f"url {where} must be a string")
    if require and not url_text:
        raise ConfigError(f"no Matomo URL: set url {where} or the MATOMO_URL environment variable")
    sites_value: Any = env.get("MATOMO_SITES") or raw.get("sites", "all")
    return MatomoSettings(
        url=normalize_url(url_text) if url_text else "",
        sites=_sites(sites_value, where),
        start_date=_date(raw.get("start_date"), "start_date", where),
        token=_token(raw.get("token_file"), env, where, require),
        requests_per_minute=_positive_int(raw, "requests_per_minute", 200, where),
        concurrency=_positive_int(raw, "concurrency", 8, where),
        page_size=_positive_int(raw, "page_size", 1000, where),
        timeout_seconds=_positive_number(raw, "timeout_seconds", 120.0, where),
        retry_budget_seconds=_positive_number(raw, "retry_budget_seconds", 600.0, where),
        finality_minutes=_non_negative_int(raw, "finality_minutes", 40, where),
        lookback_days=_non_negative_int(raw, "lookback_days", 3, where),
    )


def _sites(value: Any, where: str) -> tuple[int, ...] | None:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "all":
            return None
        parts = [part.strip() for part in text.split(",")]
        if all(part.isdigit() and int(part) > 0 for part in parts):
            return tuple(dict.fromkeys(int(part) for part in parts))
    elif (
        isinstance(value, list)
        and value
        and all(isinstance(item, int) and not isinstance(item, bool) and item > 0 for item in value)
    ):
        return tuple(dict.fromkeys(value))
    raise ConfigError(
        f'sites {where} must be "all" or a list of site ids like [1, 3] '
        f'(MATOMO_SITES: "all" or "1,3"); got {value!r}'
    )


def _date(value: Any, key: str, where: str) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{key} {where} must be a date like 2024-01-01; got {value!r}")


def _token(token_file: Any, env: Mapping[str, str], where: str, require: bool) -> str:
    token = env.get("MATOMO_TOKEN", "").strip()
    if token:
        return token
    file_value = env.get("MATOMO_TOKEN_FILE") or token_file
    if file_value:
        if not isinstance(file_value, str):
            raise ConfigError(f"token_file {where} must be a path string")
        path = Path(file_value).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
        if token:
            return token
        if require:
            raise ConfigError(f"the token file {path} is empty")
    if require:
        raise ConfigError(
            "no Matomo token: set the MATOMO_TOKEN environment variable, or token_file "
            f"{where} (or MATOMO_TOKEN_FILE); it is never read from the command line"
        )
    return ""


def _positive_int(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} {where} must be a positive integer; got {value!r}")
    return int(value)


def _non_negative_int(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} {where} must be an integer >= 0; got {value!r}")
    return int(value)


def _positive_number(raw: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} {where} must be a positive number; got {value!r}")
    return float(value)


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{key} {where} must be a non-empty string; got {value!r}")
    return value


def _warehouse(raw: dict[str, Any], env: Mapping[str, str], source: str) -> WarehouseSettings:
    where = f"in [warehouse] of {source}"
    target = env.get("EXTRACT_TARGET") or raw.get("target", "duckdb")
    if target not in _TARGETS:
        raise ConfigError(f"target {where} must be one of {', '.join(_TARGETS)}; got {target!r}")
    path = env.get("DUCKDB_PATH") or _optional_str(raw, "path", where) or "matomo.duckdb"
    schema = _optional_str(raw, "schema", where) or "raw"
    if not schema.replace("_", "").isalnum():
        raise ConfigError(f"schema {where} must be a plain identifier (letters, digits, _)")
    credentials = _optional_str(raw, "credentials_file", where)
    project = _optional_str(raw, "project", where)
    dataset = _optional_str(raw, "dataset", where)
    if target == "bigquery":
        _bigquery_names(project, dataset, where)
    return WarehouseSettings(
        target=target,
        path=Path(path).expanduser(),
        schema=schema,
        project=project,
        dataset=dataset,
        location=_optional_str(raw, "location", where),
        credentials_file=Path(credentials).expanduser() if credentials else None,
        api_endpoint=env.get("BQ_API_ENDPOINT") or None,
    )


# Google's rules; checked here because both names end up inside SQL identifiers.
_PROJECT_ID = re.compile(r"(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET_ID = re.compile(r"[A-Za-z0-9_]{1,1024}")


def _bigquery_names(project: str | None, dataset: str | None, where: str) -> None:
    if project is None or dataset is None:
        missing = "project" if project is None else "dataset"
        raise ConfigError(f"target bigquery needs {missing} {where}")
    if not _PROJECT_ID.fullmatch(project):
        raise ConfigError(f"project {where} is not a Google Cloud project id; got {project!r}")
    if not _DATASET_ID.fullmatch(dataset):
        raise ConfigError(
            f"dataset {where} must be a BigQuery dataset id (letters, digits, _); got {dataset!r}"
        )


def _reports(raw: dict[str, Any], source: str) -> ReportsSettings:
    where = f"in [reports] of {source}"
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"enabled {where} must be true or false; got {enabled!r}")
    period = raw.get("period", "day")
    if period not in ("day", "week", "month", "year", "range"):
        raise ConfigError(f"period {where} must be day, week, month, year or range; got {period!r}")
    extra = raw.get("extra", [])
    if not isinstance(extra, list):
        raise ConfigError(f"extra {where} must be a list of tables ([[reports.extra]])")
    specs = []
    for item in extra:
        method = item.get("method") if isinstance(item, dict) else None
        params = item.get("params", {}) if isinstance(item, dict) else None
        if not isinstance(method, str) or "." not in method or not isinstance(params, dict):
            raise ConfigError(
                f'each [[reports.extra]] {where} needs method = "Module.method" and optional '
                f"params = {{ ... }}; got {item!r}"
            )
        for key, value in params.items():
            if key in RESERVED_REPORT_PARAMS:
                raise ConfigError(
                    f"params of [[reports.extra]] {method} {where} cannot set {key!r}: the "
                    "extractor sets it for every report"
                )
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise ConfigError(
                    f"param {key!r} of [[reports.extra]] {method} {where} must be a string or "
                    f"an integer; got {value!r}"
                )
        specs.append(ReportSpec(method=method, params=dict(params)))
    return ReportsSettings(
        enabled=enabled,
        lookback_days=_non_negative_int(raw, "lookback_days", 3, where),
        period=period,
        extra=tuple(specs),
    )
