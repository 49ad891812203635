"""SyntheticDataset: the demo server's deterministic, any-scale Matomo (Live visits + API)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from extract.demo.dataset import DatasetError
from extract.demo.generator import (
    DayClock,
    RawVisit,
    SiteProfile,
    generate_day,
    renderer_for,
    site_profile,
    sort_key,
    zone,
)
from extract.demo.reports import (
    REPORTS,
    CustomDimension,
    Goal,
    ReportError,
    SiteInfo,
    compute_report,
    period_days,
    unknown_method_message,
)

log = logging.getLogger(__name__)

MATOMO_VERSION = "5.0.2"
_CURRENCY_NAMES = {"USD": "US Dollar", "EUR": "Euro"}
_TIMEZONE_NAMES = {
    "America/New_York": "United States - New York",
    "Europe/Berlin": "Germany - Berlin",
    "Asia/Kolkata": "India - Kolkata",
    "Asia/Tokyo": "Japan - Tokyo",
    "Australia/Sydney": "Australia - Sydney",
    "America/Los_Angeles": "United States - Los Angeles",
    "Europe/London": "United Kingdom - London",
}


class SyntheticDataset:
    """Deterministic synthetic traffic for ``sites`` sites over ``days`` local days.

    Each (site, local day) is generated on demand from (seed, site, day); the most recent
    site-days are kept in a small LRU because Live paging re-reads the same day.
    """

    def __init__(
        self,
        seed: int = 20261101,
        start: dt.date = dt.date(2026, 11, 1),
        days: int = 21,
        visits_per_day: int = 60,
        sites: int = 3,
        late_fraction: float = 0.0,
        cache_size: int = 48,
    ) -> None:
        if days < 1 or sites < 1 or visits_per_day < 1:
            raise ValueError("days, sites and visits_per_day must be positive")
        if not 0.0 <= late_fraction <= 1.0:
            raise ValueError("late_fraction must be between 0 and 1")
        self.seed = seed
        self.start = start
        self.days = days
        self.visits_per_day = visits_per_day
        self.sites = sites
        self.late_fraction = late_fraction
        self._cache: OrderedDict[tuple[int, dt.date], _SiteDay] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()  # the demo server answers from several threads

    # ---- Dataset protocol

    def site_ids(self) -> list[int]:
        return list(range(1, self.sites + 1))

    def site_timezone(self, site_id: int) -> str:
        return self._profile(site_id).timezone

    def first_day(self) -> dt.date:
        return self.start

    def last_day(self) -> dt.date:
        return self.start + dt.timedelta(self.days - 1)

    def end_timestamp(self) -> int:
        """UTC epoch at which the last local day of every site has ended."""
        return max(DayClock.of(self.last_day(), self.site_timezone(s)).end for s in self.site_ids())

    def visits_for_day(self, site_id: int, day: dt.date, now: int) -> list[dict[str, Any]]:
        site_day = self._site_day(site_id, day)
        if site_day is None:
            return []
        visits = [v for v in (site_day.render(raw, now) for raw in site_day.raw) if v is not None]
        visits.sort(key=sort_key)
        return visits

    def call(self, method: str, params: Mapping[str, str], now: int) -> Any:
        if not method:
            raise DatasetError(
                "The parameter 'method' isn't set in the Request, and a default value wasn't "
                "provided."
            )
        handler = self._handlers().get(method)
        try:
            if handler is not None:
                return handler(params, now)
            if method in REPORTS:
                return self._per_site(params, lambda site: self._report(method, site, params, now))
            raise DatasetError(unknown_method_message(method))
        except ReportError as error:
            raise DatasetError(str(error)) from None

    # ---- streaming (benchmarks)

    def iter_visits(self, now: int) -> Iterator[dict[str, Any]]:
        """Every visit of every site-day, as visible at ``now``, one site-day at a time."""
        for site_id in self.site_ids():
            for offset in range(self.days):
                yield from self.visits_for_day(site_id, self.start + dt.timedelta(offset), now)

    # ---- generation

    def _profile(self, site_id: int) -> SiteProfile:
        if site_id not in range(1, self.sites + 1):
            raise DatasetError(_unexpected_site(str(site_id)))
        return site_profile(site_id)

    def _site_day(self, site_id: int, day: dt.date) -> _SiteDay | None:
        self._profile(site_id)
        index = (day - self.start).days
        if not 0 <= index < self.days:
            return None
        key = (site_id, day)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        # Generated outside the lock: a concurrent duplicate is identical and cheap enough.
        raw = generate_day(
            site_id,
            day,
            seed=self.seed,
            day_index=index,
            visits_per_day=self.visits_per_day,
            sites=self.sites,
            late_fraction=self.late_fraction,
        )
        site_day = _SiteDay(raw, renderer_for(site_id, day))
        with self._cache_lock:
            self._cache[key] = site_day
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        log.debug("generated site=%s day=%s visits=%d", site_id, day, len(raw))
        return site_day

    # ---- API methods

    def _handlers(self) -> dict[str, Callable[[Mapping[str, str], int], Any]]:
        return {
            "API.getMatomoVersion": lambda p, now: {"value": MATOMO_VERSION},
            "API.getPhpVersion": lambda p, now: {
                "version": "8.2.36",
                "major": 8,
                "minor": 2,
                "release": 36,
                "versionId": 80236,
                "extra": "",
            },
            "API.getReportMetadata": self._report_metadata,
            "SitesManager.getAllSitesId": lambda p, now: self.site_ids(),
            "SitesManager.getSitesIdWithAtLeastViewAccess": lambda p, now: self.site_ids(),
            "SitesManager.getSitesWithAtLeastViewAccess": lambda p, now: [
                self._site_json(s) for s in self.site_ids()
            ],
            "SitesManager.getSiteFromId": lambda p, now: self._site_json(self._one_site(p)),
            "SitesManager.getSiteUrlsFromId": lambda p, now: [
                site_profile(self._one_site(p)).base_url
            ],
            "Goals.getGoals": lambda p, now: self._goals_json(self._one_site(p)),
            "CustomDimensions.getConfiguredCustomDimensions": lambda p, now: self._dimensions_json(
                self._one_site(p)
            ),
        }

    def _one_site(self, params: Mapping[str, str]) -> int:
        raw = str(params.get("idSite", ""))
        if not raw:
            raise DatasetError("Please specify a value for 'idSite'.")
        if not raw.isdigit() or int(raw) not in self.site_ids():
            raise DatasetError(_unexpected_site(raw))
        return int(raw)

    def _per_site(self, params: Mapping[str, str], answer: Callable[[int], Any]) -> Any:
        """One site's body, or a map keyed by idsite for ``idSite=all`` / ``1,2``."""
        raw = str(params.get("idSite", ""))
        if raw == "all" or "," in raw:
            wanted = (
                self.site_ids()
                if raw == "all"
                else [self._one_site({"idSite": part}) for part in raw.split(",") if part]
            )
            return {str(site): answer(site) for site in wanted}
        return answer(self._one_site(params))

    def _report(self, method: str, site_id: int, params: Mapping[str, str], now: int) -> Any:
        profile = site_profile(site_id)
        today = dt.datetime.fromtimestamp(now, zone(profile.timezone)).date()
        period, date = str(params.get("period", "")), str(params.get("date", ""))
        days = [d for d in period_days(period, date, today) if self._in_range(d)]
        visits = [v for d in days for v in self.visits_for_day(site_id, d, now)]
        return compute_report(method, visits, site_info(profile), period, date, params, today)

    def _in_range(self, day: dt.date) -> bool:
        return 0 <= (day - self.start).days < self.days

    def _site_json(self, site_id: int) -> dict[str, Any]:
        """``SitesManager.getSiteFromId`` with the captured keys and types."""
        profile = site_profile(site_id)
        template = profile.template
        created = self.start - dt.timedelta(31)
        return {
            "idsite": site_id,
            "name": profile.name,
            "main_url": profile.base_url,
            "ts_created": f"{created.isoformat()} 00:00:00",
            "ecommerce": int(template.ecommerce),
            "sitesearch": 1,
            "sitesearch_keyword_parameters": template.search_keyword_param,
            "sitesearch_category_parameters": template.search_category_param,
            "timezone": profile.timezone,
            "currency": template.currency,
            "exclude_unknown_urls": 0,
            "excluded_ips": "",
            "excluded_parameters": template.excluded_parameters,
            "excluded_user_agents": "",
            "excluded_referrers": "",
            "group": "",
            "type": "website",
            "keep_url_fragment": 0,
            "creator_login": "anonymous" if site_id == 1 else "admin",
            "timezone_name": _TIMEZONE_NAMES.get(profile.timezone, profile.timezone),
            "currency_name": _CURRENCY_NAMES[template.currency],
        }

    def _goals_json(self, site_id: int) -> list[dict[str, Any]]:
        """``Goals.getGoals``: ints; manual goals have no pattern keys."""
        goals = []
        for goal in site_profile(site_id).template.goals:
            row: dict[str, Any] = {
                "idsite": site_id,
                "idgoal": goal.idgoal,
                "name": goal.name,
                "description": goal.description,
                "match_attribute": goal.match_attribute,
            }
            if goal.match_attribute != "manually":
                row.update(pattern=goal.pattern, pattern_type=goal.pattern_type, case_sensitive=0)
            row.update(
                allow_multiple=int(goal.allow_multiple),
                revenue=int(goal.revenue) if float(goal.revenue).is_integer() else goal.revenue,
                deleted=0,
                event_value_as_revenue=int(goal.event_value_as_revenue),
            )
            goals.append(row)
        return goals

    def _dimensions_json(self, site_id: int) -> list[dict[str, Any]]:
        """``CustomDimensions.getConfiguredCustomDimensions``: ids as strings, active as bool."""
        return [
            {
                "idcustomdimension": str(d.idcustomdimension),
                "idsite": str(site_id),
                "name": d.name,
                "index": str(d.index),
                "scope": d.scope,
                "active": True,
                "extractions": [],
                "case_sensitive": True,
            }
            for d in site_profile(site_id).template.dimensions
        ]

    def _report_metadata(self, params: Mapping[str, str], now: int) -> list[dict[str, Any]]:
        raw = str(params.get("idSites") or params.get("idSite") or "")
        site_id = self._one_site({"idSite": raw.split(",")[0]})
        return report_metadata(site_profile(site_id))


class _SiteDay:
    """A generated site-day and its renderer."""

    __slots__ = ("raw", "render")

    def __init__(self, raw: list[RawVisit], render: Callable[[RawVisit, int], Any]) -> None:
        self.raw = raw
        self.render = render


def site_info(profile: SiteProfile) -> SiteInfo:
    """What ``reports`` needs to know about a synthetic site."""
    template = profile.template
    return SiteInfo(
        idsite=profile.idsite,
        timezone=profile.timezone,
        ecommerce=template.ecommerce,
        goals=tuple(Goal(g.idgoal, g.name) for g in template.goals),
        dimensions=tuple(
            CustomDimension(d.idcustomdimension, d.scope, d.name) for d in template.dimensions
        ),
        currency_symbol=profile.currency_symbol,
    )


def _unexpected_site(raw: str) -> str:
    return f"An unexpected website was found in the request: website id was set to '{raw}' ."


# --------------------------------------------------------------------------- report metadata

# (module, action, category, subcategory, name, dimension, metrics)
_VISIT_METRICS = {
    "nb_visits": "Visits",
    "nb_uniq_visitors": "Unique visitors",
    "nb_actions": "Actions",
    "nb_users": "Users",
}
_CATALOGUE: tuple[tuple[str, str, str, str, str, str, dict[str, str]], ...] = (
    (
        "VisitsSummary",
        "get",
        "Visitors",
        "Overview",
        "Visits Summary",
        "",
        {
            "nb_uniq_visitors": "Unique visitors",
            "nb_visits": "Visits",
            "nb_users": "Users",
            "nb_actions": "Actions",
            "max_actions": "Maximum actions in one visit",
        },
    ),
    ("UserCountry", "getCountry", "Visitors", "Locations", "Country", "Country", _VISIT_METRICS),
    ("UserCountry", "getCity", "Visitors", "Locations", "City", "City", _VISIT_METRICS),
    (
        "UserLanguage",
        "getLanguage",
        "Visitors",
        "Locations",
        "Browser language",
        "Language",
        _VISIT_METRICS,
    ),
    (
        "UserLanguage",
        "getLanguageCode",
        "Visitors",
        "Locations",
        "Language code",
        "Language code",
        _VISIT_METRICS,
    ),
    (
        "DevicesDetection",
        "getType",
        "Visitors",
        "Devices",
        "Device type",
        "Device type",
        _VISIT_METRICS,
    ),
    (
        "DevicesDetection",
        "getBrowsers",
        "Visitors",
        "Software",
        "Browsers",
        "Browser",
        _VISIT_METRICS,
    ),
    (
        "DevicesDetection",
        "getOsVersions",
        "Visitors",
        "Software",
        "Operating System versions",
        "Operating System Version",
        _VISIT_METRICS,
    ),
    (
        "Resolution",
        "getResolution",
        "Visitors",
        "Software",
        "Screen Resolution",
        "Resolution",
        _VISIT_METRICS,
    ),
    (
        "VisitTime",
        "getVisitInformationPerLocalTime",
        "Visitors",
        "Times",
        "Visits per local time",
        "Local time",
        _VISIT_METRICS,
    ),
    (
        "VisitTime",
        "getVisitInformationPerServerTime",
        "Visitors",
        "Times",
        "Visits per server time",
        "Site time",
        _VISIT_METRICS,
    ),
    ("UserId", "getUsers", "Visitors", "User IDs", "User IDs", "User ID", _VISIT_METRICS),
    (
        "VisitFrequency",
        "get",
        "Visitors",
        "Engagement",
        "Returning Visits",
        "",
        {
            "nb_visits_returning": "Returning Visits",
            "nb_actions_returning": "Actions by Returning Visits",
        },
    ),
    (
        "Actions",
        "get",
        "Actions",
        "",
        "Actions - Main metrics",
        "",
        {
            "nb_pageviews": "Pageviews",
            "nb_uniq_pageviews": "Unique Pageviews",
            "nb_downloads": "Downloads",
            "nb_uniq_downloads": "Unique Downloads",
            "nb_outlinks": "Outlinks",
            "nb_uniq_outlinks": "Unique Outlinks",
            "nb_searches": "Searches",
            "nb_keywords": "Unique Keywords",
        },
    ),
    (
        "Actions",
        "getPageUrls",
        "Actions",
        "Pages",
        "Page URLs",
        "Page URL",
        {"nb_hits": "Pageviews", "nb_visits": "Unique Pageviews"},
    ),
    (
        "Actions",
        "getEntryPageUrls",
        "Actions",
        "Entry pages",
        "Entry pages",
        "Entry Page URL",
        {"entry_nb_visits": "Entrances"},
    ),
    (
        "Actions",
        "getExitPageUrls",
        "Actions",
        "Exit pages",
        "Exit pages",
        "Exit Page URL",
        {"exit_nb_visits": "Exits"},
    ),
    (
        "Actions",
        "getPageTitles",
        "Actions",
        "Page titles",
        "Page titles",
        "Page Name",
        {"nb_hits": "Pageviews", "nb_visits": "Unique Pageviews"},
    ),
    (
        "Actions",
        "getSiteSearchKeywords",
        "Actions",
        "Site Search",
        "Site Search Keywords",
        "Keyword (Site Search)",
        {"nb_visits": "Searches"},
    ),
    (
        "Actions",
        "getSiteSearchNoResultKeywords",
        "Actions",
        "Site Search",
        "Search Keywords with No Results",
        "Keyword (Site Search)",
        {"nb_visits": "Searches"},
    ),
    (
        "Actions",
        "getSiteSearchCategories",
        "Actions",
        "Site Search",
        "Search Categories",
        "Search Category",
        {"nb_visits": "Searches"},
    ),
    (
        "Actions",
        "getOutlinks",
        "Actions",
        "Outlinks",
        "Outlinks",
        "Clicked URL",
        {"nb_visits": "Unique Clicks", "nb_hits": "Clicks"},
    ),
    (
        "Actions",
        "getDownloads",
        "Actions",
        "Downloads",
        "Downloads",
        "Download URL",
        {"nb_visits": "Unique Downloads", "nb_hits": "Downloads"},
    ),
    (
        "Events",
        "getCategory",
        "Actions",
        "Events",
        "Event Categories",
        "Event Category",
        {"nb_events": "Events", "sum_event_value": "Event value"},
    ),
    (
        "Events",
        "getAction",
        "Actions",
        "Events",
        "Event Actions",
        "Event Action",
        {"nb_events": "Events", "sum_event_value": "Event value"},
    ),
    (
        "Events",
        "getName",
        "Actions",
        "Events",
        "Event Names",
        "Event Name",
        {"nb_events": "Events", "sum_event_value": "Event value"},
    ),
    (
        "Contents",
        "getContentNames",
        "Actions",
        "Contents",
        "Content Names",
        "Content Name",
        {"nb_impressions": "Impressions", "nb_interactions": "Interactions"},
    ),
    (
        "Contents",
        "getContentPieces",
        "Actions",
        "Contents",
        "Content Pieces",
        "Content Piece",
        {"nb_impressions": "Impressions", "nb_interactions": "Interactions"},
    ),
    (
        "Referrers",
        "getReferrerType",
        "Referrers",
        "All Channels",
        "Channel Type",
        "Channel Type",
        _VISIT_METRICS,
    ),
    ("Referrers", "getAll", "Referrers", "All Channels", "Referrers", "Referrer", _VISIT_METRICS),
    (
        "Referrers",
        "getKeywords",
        "Referrers",
        "Search Engines & Keywords",
        "Keywords",
        "Keyword",
        _VISIT_METRICS,
    ),
    (
        "Referrers",
        "getSearchEngines",
        "Referrers",
        "Search Engines & Keywords",
        "Search Engines",
        "Search Engine",
        _VISIT_METRICS,
    ),
    ("Referrers", "getWebsites", "Referrers", "Websites", "Websites", "Website", _VISIT_METRICS),
    (
        "Referrers",
        "getSocials",
        "Referrers",
        "Social Networks",
        "Social Networks",
        "Social Network",
        _VISIT_METRICS,
    ),
    (
        "Referrers",
        "getCampaigns",
        "Referrers",
        "Campaigns",
        "Campaigns",
        "Campaign",
        _VISIT_METRICS,
    ),
)
_ECOMMERCE = (
    ("getItemsSku", "Product SKU"),
    ("getItemsName", "Product Name"),
    ("getItemsCategory", "Product Category"),
)


def report_metadata(profile: SiteProfile) -> list[dict[str, Any]]:
    """``API.getReportMetadata``: the implemented reports, in the captured entry shape."""
    entries: list[dict[str, Any]] = []

    def add(
        module: str,
        action: str,
        category: str,
        subcategory: str,
        name: str,
        dimension: str,
        metrics: Mapping[str, str],
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        entry: dict[str, Any] = {"category": category}
        if subcategory:
            entry["subcategory"] = subcategory
        entry.update(name=name, module=module, action=action)
        if parameters:
            entry["parameters"] = dict(parameters)
        if dimension:
            entry["dimension"] = dimension
        entry["metrics"] = dict(metrics)
        entry["metricTypes"] = {k: "number" for k in metrics}
        suffix = "".join(f"_{k}--{v}" for k, v in (parameters or {}).items())
        entry["uniqueId"] = f"{module}_{action}{suffix}"
        entries.append(entry)

    for module, action, category, subcategory, name, dimension_name, metrics in _CATALOGUE:
        add(module, action, category, subcategory, name, dimension_name, metrics)
    goal_metrics = {
        "nb_conversions": "Conversions",
        "nb_visits_converted": "Visits with Conversions",
        "revenue": "Revenue",
    }
    add("Goals", "get", "Goals", "", "Goals", "", goal_metrics)
    for goal in profile.template.goals:
        add(
            "Goals",
            "get",
            "Goals",
            "",
            f"Goal {goal.name}",
            "",
            goal_metrics,
            {"idGoal": goal.idgoal},
        )
    if profile.template.ecommerce:
        add(
            "Goals",
            "get",
            "Ecommerce",
            "",
            "Ecommerce Orders",
            "",
            goal_metrics,
            {"idGoal": "ecommerceOrder"},
        )
        add(
            "Goals",
            "get",
            "Ecommerce",
            "",
            "Abandoned Carts",
            "",
            goal_metrics,
            {"idGoal": "ecommerceAbandonedCart"},
        )
        for action, label in _ECOMMERCE:
            add(
                "Goals",
                action,
                "Goals",
                "Ecommerce",
                label,
                label,
                {"revenue": "Product Revenue", "quantity": "Quantity"},
            )
    for dimension in profile.template.dimensions:
        category = "Visitors" if dimension.scope == "visit" else "Actions"
        add(
            "CustomDimensions",
            "getCustomDimension",
            category,
            f"customdimension{dimension.idcustomdimension}",
            dimension.name,
            dimension.name,
            {"nb_visits": "Visits"},
            {"idDimension": str(dimension.idcustomdimension)},
        )
    return entries
