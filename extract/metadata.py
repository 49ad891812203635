"""Site metadata: sites (timezones, creation dates), goals and custom dimensions, landed raw."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from extract.client import MatomoClient
from extract.errors import MatomoRefusedError
from extract.warehouse import CUSTOM_DIMENSIONS, GOALS, SITES, Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Site:
    site_id: int
    name: str
    timezone: str
    created_at: dt.datetime | None  # ts_created, UTC
    payload: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, payload: dict[str, Any]) -> Site:
        created = payload.get("ts_created")
        try:
            created_at = dt.datetime.fromisoformat(str(created)).replace(tzinfo=dt.UTC)
        except ValueError:
            created_at = None
        return cls(
            site_id=int(payload["idsite"]),
            name=str(payload.get("name", "")),
            timezone=str(payload.get("timezone") or "UTC"),
            created_at=created_at,
            payload=payload,
        )


def fetch_sites(client: MatomoClient, wanted: Sequence[int] | None) -> list[Site]:
    """The configured sites (None = every site the token can view), in id order.

    An unknown or invisible site is a permanent error naming the site, so a typo in `sites` fails
    before any visit is fetched.
    """
    if wanted is None:
        listed = client.call("SitesManager.getSitesWithAtLeastViewAccess", what="list sites")
        if not isinstance(listed, list) or not listed:
            raise MatomoRefusedError(
                "the token cannot view any site: use the token of a Matomo user with view access"
            )
        return sorted((Site.from_api(item) for item in listed), key=lambda site: site.site_id)
    sites = []
    for site_id in wanted:
        try:
            payload = client.call(
                "SitesManager.getSiteFromId", {"idSite": site_id}, what=f"site {site_id}"
            )
        except MatomoRefusedError as exc:
            raise MatomoRefusedError(
                f"site {site_id} in [matomo] sites: {exc}", exc.message
            ) from None
        if not isinstance(payload, dict) or "idsite" not in payload:
            raise MatomoRefusedError(
                f"site {site_id} in [matomo] sites does not exist or this token cannot view it"
            )
        sites.append(Site.from_api(payload))
    return sorted(sites, key=lambda site: site.site_id)


def _land(
    warehouse: Warehouse,
    table: str,
    key_columns: list[str],
    rows: Iterable[dict[str, Any]],
    run_id: str,
    extracted_at: dt.datetime,
) -> int:
    """Replace the rows sharing `key_columns` in a raw metadata table with this run's rows."""
    path = warehouse.spool_root / f"{table}.ndjson"
    stamp = extracted_at.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    with path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps({**row, "extracted_at": stamp, "run_id": run_id}) + b"\n")
    try:
        return warehouse.replace_rows(table, key_columns, path)
    finally:
        path.unlink(missing_ok=True)


def land_sites(
    warehouse: Warehouse, sites: Sequence[Site], run_id: str, extracted_at: dt.datetime
) -> int:
    """Replace each site's row in raw.matomo_sites with what Matomo sent this run."""
    rows = (
        {
            "site_id": site.site_id,
            "name": site.name,
            "timezone": site.timezone,
            "payload": orjson.dumps(site.payload).decode(),
        }
        for site in sites
    )
    return _land(warehouse, SITES.name, ["site_id"], rows, run_id, extracted_at)


def _site_list(client: MatomoClient, method: str, site_id: int) -> list[dict[str, Any]]:
    """A per-site metadata list; a disabled plugin means no rows, with one warning."""
    try:
        listed = client.call(method, {"idSite": site_id}, what=f"{method} for site {site_id}")
    except MatomoRefusedError as exc:
        log.warning("skipping %s for site %d: %s", method, site_id, exc.message)
        return []
    return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []


def land_goals_and_dimensions(
    client: MatomoClient,
    warehouse: Warehouse,
    sites: Sequence[Site],
    run_id: str,
    extracted_at: dt.datetime,
) -> int:
    """Replace each site's goals and configured custom dimensions with what Matomo has now."""
    landed = 0
    for site in sites:
        goals = _site_list(client, "Goals.getGoals", site.site_id)
        landed += _land(
            warehouse,
            GOALS.name,
            ["site_id", "goal_id"],
            (
                {
                    "site_id": site.site_id,
                    "goal_id": int(goal["idgoal"]),
                    "payload": orjson.dumps(goal).decode(),
                }
                for goal in goals
            ),
            run_id,
            extracted_at,
        )
        dimensions = _site_list(
            client, "CustomDimensions.getConfiguredCustomDimensions", site.site_id
        )
        landed += _land(
            warehouse,
            CUSTOM_DIMENSIONS.name,
            ["site_id", "custom_dimension_id"],
            (
                {
                    "site_id": site.site_id,
                    "custom_dimension_id": int(dimension["idcustomdimension"]),
                    "payload": orjson.dumps(dimension).decode(),
                }
                for dimension in dimensions
            ),
            run_id,
            extracted_at,
        )
    return landed
