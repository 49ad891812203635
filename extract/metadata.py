"""Metadata, landed raw every run: sites, goals, custom dimensions and the Matomo version.

Each site's goals and dimensions are replaced as a whole, so one deleted in Matomo disappears.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from extract.client import MatomoClient
from extract.errors import MatomoAuthError, MatomoRefusedError
from extract.warehouse import CUSTOM_DIMENSIONS, GOALS, INSTANCE, SITES, Warehouse

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

    @property
    def ecommerce(self) -> bool:
        return _flag(self.payload.get("ecommerce"))

    @property
    def site_search(self) -> bool:
        return _flag(self.payload.get("sitesearch"))


@dataclass(frozen=True)
class SiteMetadata:
    """A site with the goals and active custom dimensions it has in Matomo now."""

    site: Site
    goal_ids: tuple[int, ...]
    dimension_ids: tuple[int, ...]


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


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


def land_rows(
    warehouse: Warehouse,
    table: str,
    key_columns: list[str],
    rows: Iterable[dict[str, Any]],
    run_id: str,
    extracted_at: dt.datetime,
    scopes: Iterable[dict[str, Any]] | None = None,
) -> int:
    """Stream `rows` into one NDJSON file and replace the rows sharing their `key_columns`.

    With `scopes` (key-column objects), every scope's rows are replaced, also by nothing.
    """
    path = warehouse.spool_root / f"{table}.ndjson"
    keys_path = warehouse.spool_root / f"{table}.keys.ndjson" if scopes is not None else None
    stamp = extracted_at.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    try:
        with path.open("wb") as out:
            for row in rows:
                out.write(orjson.dumps({**row, "extracted_at": stamp, "run_id": run_id}) + b"\n")
        if keys_path is not None and scopes is not None:
            keys_path.write_bytes(b"".join(orjson.dumps(scope) + b"\n" for scope in scopes))
        return warehouse.replace_rows(table, key_columns, path, keys_path)
    finally:
        path.unlink(missing_ok=True)
        if keys_path is not None:
            keys_path.unlink(missing_ok=True)


def land_metadata(
    client: MatomoClient,
    warehouse: Warehouse,
    sites: Sequence[Site],
    version: Any,
    run_id: str,
    extracted_at: dt.datetime,
) -> list[SiteMetadata]:
    """Replace the sites, their goals and custom dimensions, and the instance row."""
    land_rows(
        warehouse,
        SITES.name,
        ["site_id"],
        (
            {
                "site_id": site.site_id,
                "name": site.name,
                "timezone": site.timezone,
                "payload": orjson.dumps(site.payload).decode(),
            }
            for site in sites
        ),
        run_id,
        extracted_at,
    )
    land_rows(
        warehouse,
        INSTANCE.name,
        ["url"],
        [
            {
                "url": client.url,
                "version": str(version.get("value", "")) if isinstance(version, dict) else None,
                "payload": orjson.dumps(version).decode(),
            }
        ],
        run_id,
        extracted_at,
    )
    return [_land_site_lists(client, warehouse, site, run_id, extracted_at) for site in sites]


def _land_site_lists(
    client: MatomoClient,
    warehouse: Warehouse,
    site: Site,
    run_id: str,
    extracted_at: dt.datetime,
) -> SiteMetadata:
    def land(table: str, method: str, id_column: str, id_key: str) -> list[dict[str, Any]]:
        """Replace the site's whole list in `table`, so an item deleted in Matomo goes too."""
        items = _site_list(client, method, site.site_id)
        rows = (
            {
                "site_id": site.site_id,
                id_column: int(item[id_key]),
                "payload": orjson.dumps(item).decode(),
            }
            for item in items
        )
        scope = [{"site_id": site.site_id}]
        land_rows(warehouse, table, ["site_id"], rows, run_id, extracted_at, scope)
        return items

    goals = land(GOALS.name, "Goals.getGoals", "goal_id", "idgoal")
    dimensions = land(
        CUSTOM_DIMENSIONS.name,
        "CustomDimensions.getConfiguredCustomDimensions",
        "custom_dimension_id",
        "idcustomdimension",
    )
    return SiteMetadata(
        site=site,
        goal_ids=tuple(sorted(int(goal["idgoal"]) for goal in goals)),
        dimension_ids=tuple(
            sorted(
                int(dimension["idcustomdimension"])
                for dimension in dimensions
                if _flag(dimension.get("active"))
            )
        ),
    )


def _site_list(client: MatomoClient, method: str, site_id: int) -> list[dict[str, Any]]:
    """A per-site metadata list; a disabled plugin means no rows, with one warning."""
    try:
        listed = client.call(method, {"idSite": site_id}, what=f"{method} for site {site_id}")
    except MatomoAuthError:
        raise
    except MatomoRefusedError as exc:
        log.warning("skipping %s for site %d: %s", method, site_id, exc.message)
        return []
    return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []
