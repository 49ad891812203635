"""The interface between the demo server and the data it serves (synthetic or replayed).

Also holds Matomo 5's exact error messages (copied from the captured responses in
tests/fixtures/matomo-5/errors.jsonl.gz) so every data source words its refusals the same way.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Protocol


class DatasetError(Exception):
    """Matomo answers HTTP 200 {"result":"error","message": str(self)}."""


class Dataset(Protocol):
    """What the demo server needs from a data source; Live semantics live in the server."""

    def site_ids(self) -> list[int]: ...

    def site_timezone(self, site_id: int) -> str:
        """IANA timezone name of the site."""
        ...

    def first_day(self) -> datetime.date:
        """First local day with data (any site)."""
        ...

    def visits_for_day(self, site_id: int, day: datetime.date, now: int) -> list[dict[str, Any]]:
        """Live visit objects (full, with actionDetails) whose lastActionTimestamp, as visible at
        server time `now` (UTC epoch), falls in local day `day`; sorted ascending by
        (lastActionTimestamp, idVisit). Fresh dicts. Empty list for days without data."""
        ...

    def call(self, method: str, params: Mapping[str, str], now: int) -> Any:
        """Every non-Live method (SitesManager.*, Goals.getGoals, CustomDimensions.*,
        API.getMatomoVersion, API.getReportMetadata, reports such as VisitsSummary.get).
        Returns the JSON-able body; raises DatasetError(message) with Matomo's exact message for
        unknown method/module, bad idSite, bad date."""
        ...


DATE_FORMAT_MESSAGE = (
    "Date format must be: YYYY-MM-DD, or 'today' or 'yesterday' or any keyword supported by the "
    "strtotime function (see http://php.net/strtotime for more information): false"
)
METHOD_MISSING_MESSAGE = (
    "The parameter 'method' isn't set in the Request, and a default value wasn't provided."
)


def unknown_site_message(id_site: str) -> str:
    return f"An unexpected website was found in the request: website id was set to '{id_site}' ."


def missing_parameter_message(name: str) -> str:
    return f"Please specify a value for '{name}'."


def unsupported_period_message(period: str) -> str:
    return (
        f"The period '{period}' is not supported. Try any of the following instead: "
        "day, week, month, year, range"
    )


def bad_range_message(date: str) -> str:
    return (
        f"The date '{date}' is not a correct date range. It should have the following format:  "
        "'lastN', 'previousN', 'YYYY-MM-DD,YYYY-MM-DD'."
    )


def unknown_method_message(module: str, name: str, module_exists: bool) -> str:
    if not module_exists:
        return (
            f"The plugin {module} is not enabled. You can activate the plugin on Settings &gt; "
            "Plugins page in Matomo."
        )
    return (
        f"The method '{name}' does not exist or is not available in the module "
        f"'\\Piwik\\Plugins\\{module}\\API'."
    )


def no_view_access_message(id_site: int | None) -> str:
    """The anonymous user's refusal (HTTP 401); Matomo names the site when there is one."""
    prefix = "You can't access this resource as it requires 'view' access for"
    if id_site is None:
        # [derived] General_ExceptionPrivilegeAtLeastOneWebsite; not captured.
        return f"{prefix} at least one website."
    return f"{prefix} the website id = {id_site}."
