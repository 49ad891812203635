"""Exception hierarchy; each expected failure carries the exit code the CLI returns for it.

Messages are one line, name the problem and how to fix it, and never contain the token.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4
EXIT_WAREHOUSE = 5
EXIT_INTERRUPTED = 130


class ExtractError(Exception):
    """An expected failure: the CLI prints the message as one line and exits with `exit_code`."""

    exit_code = EXIT_INTERNAL


class ConfigError(ExtractError):
    """Bad or missing configuration (config file, environment, command-line usage)."""

    exit_code = EXIT_CONFIG


class WarehouseError(ExtractError):
    """The warehouse could not be opened, written or read."""

    exit_code = EXIT_WAREHOUSE


class MatomoError(ExtractError):
    """Base for errors that come from talking to Matomo."""


class MatomoRefusedError(MatomoError):
    """Permanent: Matomo answered and said no (auth, access, unknown site/method, bad parameter).

    `message` is Matomo's own text, so callers (e.g. reports) can decide to skip a report.
    """

    exit_code = EXIT_REFUSED

    def __init__(self, summary: str, message: str = "") -> None:
        super().__init__(summary)
        self.message = message


class MatomoAuthError(MatomoRefusedError):
    """The token is wrong, expired or lacks access: nothing else will work either."""


class MatomoUnavailableError(MatomoError):
    """Matomo could not be reached or kept failing transiently until the retry budget ran out."""

    exit_code = EXIT_UNAVAILABLE


class TransientError(MatomoError):
    """One failed attempt worth retrying (429, 5xx, timeout, reset, body cut mid-JSON, DB deadlock).

    Raised inside the client's retry loop only; when the budget is spent it becomes
    MatomoUnavailableError. `retry_after` is the server's Retry-After in seconds, if it sent one.
    """

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, summary: str, retry_after: float | None = None) -> None:
        super().__init__(summary)
        self.retry_after = retry_after


class Interrupted(ExtractError):
    """The run was stopped (Ctrl-C / SIGTERM); committed windows stay committed."""

    exit_code = EXIT_INTERRUPTED
