"""extract.toml + environment -> Settings; every mistake is one ConfigError line naming the fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from extract.config import load_settings, normalize_url
from extract.errors import ConfigError

TOKEN = "0123456789abcdef0123456789abcdef"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "extract.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/matomo",
        "https://example.com/matomo/",
        "https://example.com/matomo/index.php",
        "  https://example.com/matomo//  ",
    ],
)
def test_sub_path_urls_normalise_to_one_endpoint(url: str) -> None:
    assert normalize_url(url) == "https://example.com/matomo/index.php"


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/index.php"),
        ("https://analytics.example.com/", "https://analytics.example.com/index.php"),
    ],
)
def test_root_urls(url: str, endpoint: str) -> None:
    assert normalize_url(url) == endpoint


@pytest.mark.parametrize(
    "url",
    [
        "analytics.example.com",
        "ftp://example.com/",
        "https://example.com/index.php?module=API&token_auth=abc",
        "https://user:pass@example.com/",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        normalize_url(url)
    assert "abc" not in str(error.value)
    assert "pass" not in str(error.value)


def test_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[matomo]
url = "https://example.com/matomo/"
sites = [1, 3]
start_date = 2024-01-01
requests_per_minute = 60
concurrency = 2
page_size = 500
timeout_seconds = 30
retry_budget_seconds = 90.5
finality_minutes = 45
lookback_days = 5

[warehouse]
target = "duckdb"
path = "data/m.duckdb"
schema = "matomo_raw"

[reports]
enabled = false
lookback_days = 2
period = "week"
[[reports.extra]]
method = "CustomReports.getCustomReport"
params = { idCustomReport = 1 }
""",
    )
    settings = load_settings(path, {"MATOMO_TOKEN": TOKEN})
    matomo = settings.matomo
    assert matomo.url == "https://example.com/matomo/index.php"
    assert matomo.sites == (1, 3)
    assert matomo.start_date == dt.date(2024, 1, 1)
    assert matomo.token == TOKEN
    assert (matomo.requests_per_minute, matomo.concurrency, matomo.page_size) == (60, 2, 500)
    assert (matomo.timeout_seconds, matomo.retry_budget_seconds) == (30.0, 90.5)
    assert (matomo.finality_minutes, matomo.lookback_days) == (45, 5)
    assert settings.warehouse.path == Path("data/m.duckdb")
    assert settings.warehouse.schema == "matomo_raw"
    assert settings.reports.period == "week"
    assert settings.reports.enabled is False
    assert settings.reports.extra[0].method == "CustomReports.getCustomReport"
    assert dict(settings.reports.extra[0].params) == {"idCustomReport": 1}
    assert TOKEN not in repr(settings)


def test_defaults_are_matomo_cloud_friendly(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, '[matomo]\nurl = "https://m.example"\n'), {"MATOMO_TOKEN": TOKEN}
    )
    matomo = settings.matomo
    assert matomo.sites is None
    assert matomo.start_date is None
    assert (matomo.requests_per_minute, matomo.concurrency) == (200, 8)
    assert (matomo.page_size, matomo.finality_minutes, matomo.lookback_days) == (1000, 40, 3)
    assert settings.warehouse.target == "duckdb"
    assert settings.warehouse.path == Path("matomo.duckdb")
    assert settings.warehouse.schema == "raw"
    assert settings.reports.enabled is True


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[matomo]\nurl = "https://file.example"\nsites = [1]\n')
    env = {
        "MATOMO_URL": "https://env.example/m/",
        "MATOMO_SITES": "2, 3",
        "MATOMO_TOKEN": TOKEN,
        "DUCKDB_PATH": str(tmp_path / "env.duckdb"),
    }
    settings = load_settings(path, env)
    assert settings.matomo.url == "https://env.example/m/index.php"
    assert settings.matomo.sites == (2, 3)
    assert settings.warehouse.path == tmp_path / "env.duckdb"


def test_environment_alone_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./extract.toml here
    settings = load_settings(
        None, {"MATOMO_URL": "http://h", "MATOMO_TOKEN": TOKEN, "MATOMO_SITES": "all"}
    )
    assert settings.matomo.url == "http://h/index.php"
    assert settings.matomo.sites is None
    assert settings.source == "the environment"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[matomo]\nurl = "https://m.example"\n')
    settings = load_settings(None, {"EXTRACT_CONFIG": str(path), "MATOMO_TOKEN": TOKEN})
    assert settings.matomo.url == "https://m.example/index.php"


def test_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    path = write(tmp_path, f'[matomo]\nurl = "https://m.example"\ntoken_file = "{token_file}"\n')
    assert load_settings(path, {}).matomo.token == TOKEN
    assert load_settings(path, {"MATOMO_TOKEN_FILE": str(token_file)}).matomo.token == TOKEN


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            '[matomo]\nurl = "https://m"\nsitse = "all"\n',
            {},
            r"unknown key 'sitse' in \[matomo\] of extract.toml \(did you mean 'sites'\?\)",
        ),
        (
            '[matomo]\nurl = "https://m"\n[warehous]\n',
            {},
            r"unknown section \[warehous\].*did you mean 'warehouse'",
        ),
        (
            '[matomo]\nurl = "https://m"\ntoken = "abc"\n',
            {},
            "the token does not belong in extract.toml",
        ),
        (
            "[matomo]\n",
            {},
            "no Matomo URL: set url in \\[matomo\\] of extract.toml or the MATOMO_URL",
        ),
        (
            '[matomo]\nurl = "https://m"\n',
            {"MATOMO_TOKEN": ""},
            "no Matomo token: set the MATOMO_TOKEN",
        ),
        (
            '[matomo]\nurl = "https://m"\nsites = "1,x"\n',
            {},
            'sites in \\[matomo\\] of extract.toml must be "all"',
        ),
        ('[matomo]\nurl = "https://m"\nsites = [0]\n', {}, 'must be "all" or a list of site ids'),
        (
            '[matomo]\nurl = "https://m"\nstart_date = "yesterday"\n',
            {},
            "start_date .* must be a date",
        ),
        (
            '[matomo]\nurl = "https://m"\nconcurrency = 0\n',
            {},
            "concurrency .* must be a positive integer",
        ),
        (
            '[matomo]\nurl = "https://m"\npage_size = "big"\n',
            {},
            "page_size .* must be a positive integer",
        ),
        (
            '[matomo]\nurl = "https://m"\nlookback_days = -1\n',
            {},
            "lookback_days .* must be an integer >= 0",
        ),
        (
            '[matomo]\nurl = "https://m"\n[warehouse]\ntarget = "snowflake"\n',
            {},
            "target .* must be one of duckdb, bigquery",
        ),
        (
            '[matomo]\nurl = "https://m"\n[warehouse]\nschema = "raw; drop"\n',
            {},
            "plain identifier",
        ),
        (
            '[matomo]\nurl = "https://m"\n[reports]\nperiod = "fortnight"\n',
            {},
            "period .* must be day",
        ),
        ('[matomo]\nurl = "https://m"\n[[reports.extra]]\nparams = {}\n', {}, "needs method"),
        ('[matomo]\nurl = "https://m"\n[reports]\nenabled = "no"\n', {}, "true or false"),
        ("[matomo\nurl=", {}, "extract.toml is not valid TOML"),
    ],
)
def test_every_mistake_is_one_clear_line(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as error:
        load_settings(path, {"MATOMO_TOKEN": TOKEN, **env})
    assert "\n" not in str(error.value)
    assert TOKEN not in str(error.value)


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.toml not found"):
        load_settings(tmp_path / "nope.toml", {"MATOMO_TOKEN": TOKEN})


def test_unreadable_token_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[matomo]\nurl = "https://m"\n')
    with pytest.raises(ConfigError, match="cannot read the token file"):
        load_settings(path, {"MATOMO_TOKEN_FILE": str(tmp_path / "missing")})


def test_warehouse_only_commands_need_no_matomo(tmp_path: Path) -> None:
    path = write(tmp_path, '[warehouse]\npath = "x.duckdb"\n')
    settings = load_settings(path, {}, require_matomo=False)
    assert settings.matomo.url == ""
    assert settings.matomo.token == ""
    assert settings.warehouse.path == Path("x.duckdb")
