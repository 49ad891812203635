"""Deterministic synthetic Matomo traffic, rendered as Live.getLastVisitsDetails visit objects.

A site-day is generated on its own from a seed derived from (seed, site, day): visit ids, action
ids and order numbers are arithmetic functions of the day and site indices, so any day can be
generated (and regenerated) without generating the days before it. ``generate_day`` builds the raw
visits (every action with its UTC time and the time it becomes visible on the server);
``render_visit`` turns one into the exact JSON shape Matomo 5.0.2 returns, as seen at a server
time ``now`` (only visible actions; visit-level fields recomputed from them).

The sites imitate the captured Matomo (Shop / Blog / Docs DE); sites beyond three repeat those
templates in other time zones, including a fixed-offset one (``UTC-3``) and far-east ones.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

# --------------------------------------------------------------------------- formatting


def pretty_duration(seconds: int) -> str:
    """Matomo's ``getPrettyTimeFromSeconds`` (``"7 min 17s"``, ``"1 hours 2 min"``, ``"0s"``)."""
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} days {hours} hours"
    if hours:
        return f"{hours} hours {minutes} min"
    if minutes:
        return f"{minutes} min {secs}s"
    return f"{secs}s"


def money(amount: float, symbol: str) -> str:
    """Matomo's pretty money: ``$5``, ``$12.50``, ``€120``."""
    return f"{symbol}{amount:.0f}" if float(amount).is_integer() else f"{symbol}{amount:.2f}"


def number(value: float) -> int | float:
    """Whole floats as ints, like PHP's json_encode."""
    return int(value) if float(value).is_integer() else value


def round2(value: float) -> float:
    return float(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- time zones


def zone(name: str) -> dt.tzinfo:
    """A Matomo site timezone: an IANA name, ``UTC`` or a fixed offset like ``UTC+5.5``."""
    if name.startswith("UTC") and len(name) > 3:
        hours = float(name[3:])
        return dt.timezone(dt.timedelta(hours=hours))
    return ZoneInfo(name)


def local_midnight(day: dt.date, tz: dt.tzinfo) -> int:
    """UTC epoch of 00:00:00 local time of ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


@dataclass(frozen=True)
class DayClock:
    """A site-local day: its UTC bounds and the (at most one) offset change inside it."""

    day: dt.date
    start: int  # UTC epoch of local 00:00:00
    end: int  # UTC epoch of the next local 00:00:00 (exclusive)
    offset_before: int
    offset_after: int
    transition: int  # UTC epoch of the offset change (``end`` if none)

    @classmethod
    def of(cls, day: dt.date, timezone: str) -> DayClock:
        tz = zone(timezone)
        start = local_midnight(day, tz)
        end = local_midnight(day + dt.timedelta(1), tz)
        before = _offset(tz, start)
        after = _offset(tz, end - 1)
        transition = end
        if before != after:
            low, high = start, end - 1
            while low < high:  # first second with the new offset
                middle = (low + high) // 2
                if _offset(tz, middle) == before:
                    low = middle + 1
                else:
                    high = middle
            transition = low
        return cls(day, start, end, before, after, transition)

    def offset(self, ts: int) -> int:
        return self.offset_before if ts < self.transition else self.offset_after

    def local(self, ts: int) -> int:
        """Site-local wall-clock time encoded as a UTC epoch (Live's action ``timestamp``)."""
        return ts + self.offset(ts)

    def clock(self, ts: int) -> str:
        return _hms(self.local(ts) % 86400)


def _offset(tz: dt.tzinfo, ts: int) -> int:
    delta = dt.datetime.fromtimestamp(ts, tz).utcoffset()
    return int(delta.total_seconds()) if delta else 0


@lru_cache(maxsize=4096)
def _utc_date(epoch_day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(epoch_day)).isoformat()


@lru_cache(maxsize=86_400)
def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@lru_cache(maxsize=512)
def _pretty_dates(day: dt.date) -> tuple[str, str]:
    """(``"Sunday, November 1, 2026"``, ``"Nov 1, 2026"``) as Matomo prints them in English."""
    return (
        f"{day.strftime('%A, %B')} {day.day}, {day.year}",
        f"{day.strftime('%b')} {day.day}, {day.year}",
    )


# --------------------------------------------------------------------------- catalogs


@dataclass(frozen=True)
class Device:
    device_type: str
    brand: str
    model: str
    os_name: str
    os_code: str
    os_version: str
    engine: str
    engine_description: str
    browser: str
    browser_code: str
    browser_version: str
    weight: int


def _table(rows: str) -> list[list[str]]:
    """Catalog rows written as ``a | b | c`` lines (one entity per line keeps them readable)."""
    return [[cell.strip() for cell in line.split("|")] for line in rows.strip().splitlines()]


# The 16 user agents of the capture, as Matomo's DeviceDetector reported them (last: weight).
DEVICES = tuple(
    Device(*row[:11], weight=int(row[11]))  # type: ignore[arg-type, misc]
    for row in _table("""
Desktop    | Unknown | Generic Desktop    | Windows   | WIN | 10    | Blink  | Blink (Chrome, Opera) | Chrome            | CH | 130.0 | 93
Smartphone | Apple   | iPhone             | iOS       | IOS | 18.1  | WebKit | WebKit (Safari)       | Mobile Safari     | MF | 18.1  | 64
Desktop    | Apple   | Generic Desktop    | Mac       | MAC | 10.15 | Blink  | Blink (Chrome, Opera) | Chrome            | CH | 130.0 | 37
Desktop    | Unknown | Generic Desktop    | Windows   | WIN | 10    | Blink  | Blink (Chrome, Opera) | Microsoft Edge    | PS | 130.0 | 30
Desktop    | Apple   | Generic Desktop    | Mac       | MAC | 10.15 | WebKit | WebKit (Safari)       | Safari            | SF | 18.1  | 30
Smartphone | Google  | Pixel 8            | Android   | AND | 14    | Blink  | Blink (Chrome, Opera) | Chrome Mobile     | CM | 130.0 | 29
Desktop    | Unknown | Generic Desktop    | Windows   | WIN | 10    | Gecko  | Gecko (Firefox)       | Firefox           | FF | 132.0 | 23
Smartphone | Samsung | Galaxy S23 Ultra   | Android   | AND | 14    | WebKit | WebKit (Safari)       | Samsung Browser   | SB | 26.0  | 21
Tablet     | Apple   | iPad               | iOS       | IPA | 17.7  | WebKit | WebKit (Safari)       | Mobile Safari     | MF | 17.6  | 20
Smartphone | Samsung | Galaxy A54 5G      | Android   | AND | 13    | Blink  | Blink (Chrome, Opera) | Chrome Mobile     | CM | 130.0 | 18
Desktop    | Unknown | Generic Desktop    | GNU/Linux | LIN |       | Blink  | Blink (Chrome, Opera) | Chrome            | CH | 130.0 | 11
Desktop    | Unknown | Generic Desktop    | Ubuntu    | UBT |       | Gecko  | Gecko (Firefox)       | Firefox           | FF | 132.0 | 11
Smartphone | Apple   | iPhone             | iOS       | IOS | 17.6  | WebKit | WebKit (Safari)       | Chrome Mobile iOS | CI | 130.0 | 11
Smartphone | Unknown | Generic Smartphone | Android   | AND | 14    | Gecko  | Gecko (Firefox)       | Firefox Mobile    | FM | 132.0 | 9
Desktop    | Unknown | Generic Desktop    | Windows   | WIN | 10    | Blink  | Blink (Chrome, Opera) | Opera             | OP | 115.0 | 7
""")  # noqa: E501 - a table reads best unwrapped
)
RESOLUTIONS = {
    "Desktop": (
        "1920x1080",
        "1366x768",
        "1440x900",
        "2560x1440",
        "1536x864",
        "1280x720",
        "1600x900",
        "1680x1050",
        "1512x982",
        "1728x1117",
        "3840x2160",
    ),
    "Smartphone": ("390x844", "412x915", "393x852", "360x800", "430x932", "384x824", "375x667"),
    "Tablet": ("820x1180", "768x1024", "1024x1366"),
}


@dataclass(frozen=True)
class Place:
    continent: str
    continent_code: str
    country: str
    country_code: str
    region: str
    region_code: str
    city: str
    language: str
    language_code: str
    utc_offset: int  # hours, for the visitor's own clock
    weight: int


# (last columns: the visitor's UTC offset in hours for their own clock, weight)
PLACES = tuple(
    Place(*row[:9], utc_offset=int(row[9]), weight=int(row[10]))  # type: ignore[arg-type, misc]
    for row in _table("""
North America | amn | United States  | us | California           | CA  | San Francisco | English    | en | -8 | 75
North America | amn | United States  | us | New York             | NY  | New York      | English    | en | -5 | 61
Europe        | eur | Germany        | de | Berlin               | BE  | Berlin        | German     | de | 1  | 48
Europe        | eur | United Kingdom | gb | England              | ENG | London        | English    | en | 0  | 41
North America | amn | United States  | us | Texas                | TX  | Austin        | English    | en | -6 | 35
Europe        | eur | Germany        | de | Bayern               | BY  | München       | German     | de | 1  | 22
Europe        | eur | France         | fr | Île-de-France        | IDF | Paris         | French     | fr | 1  | 21
Asia          | asi | India          | in | Karnātaka            | KA  | Bengaluru     | English    | en | 5  | 19
North America | amn | Canada         | ca | Ontario              | ON  | Toronto       | English    | en | -5 | 19
Europe        | eur | Spain          | es | Madrid, Comunidad de | MD  | Madrid        | Spanish    | es | 1  | 13
South America | ams | Brazil         | br | São Paulo            | SP  | São Paulo     | Portuguese | pt | -3 | 13
Europe        | eur | Netherlands    | nl | Noord-Holland        | NH  | Amsterdam     | Dutch      | nl | 1  | 13
Europe        | eur | Switzerland    | ch | Zürich               | ZH  | Zürich        | German     | de | 1  | 11
Europe        | eur | Austria        | at | Wien                 | 9   | Wien          | German     | de | 1  | 11
Asia          | asi | Japan          | jp | Tokyo                | 13  | Tokyo         | Japanese   | ja | 9  | 10
Oceania       | oce | Australia      | au | New South Wales      | NSW | Sydney        | English    | en | 11 | 9
""")  # noqa: E501
)
GERMAN_PLACES = tuple(p for p in PLACES if p.language_code == "de")

# (name, engine url, icon host, referrer url with keyword "{q}", referrer url without keyword)
SEARCH_ENGINES = (
    (
        "Google",
        "http://google.com",
        "google.com",
        "https://www.google.com/search?q={q}",
        ("https://www.google.com/", "https://www.google.de/", "https://www.google.co.uk/"),
        60,
    ),
    (
        "Bing",
        "http://bing.com",
        "bing.com",
        "https://www.bing.com/search?q={q}",
        ("https://www.bing.com/",),
        12,
    ),
    (
        "DuckDuckGo",
        "http://duckduckgo.com",
        "duckduckgo.com",
        "https://duckduckgo.com/?q={q}&ia=web",
        ("https://duckduckgo.com/",),
        10,
    ),
    (
        "Ecosia",
        "http://ecosia.org",
        "ecosia.org",
        "https://www.ecosia.org/search?q={q}",
        ("https://www.ecosia.org/",),
        4,
    ),
    (
        "Yahoo!",
        "http://search.yahoo.com",
        "search.yahoo.com",
        "https://search.yahoo.com/search?p={q}",
        ("https://search.yahoo.com/",),
        4,
    ),
    # Matomo classifies https://www.facebook.com/ as the search engine "Facebook".
    (
        "Facebook",
        "http://www.facebook.com",
        "www.facebook.com",
        "",
        ("https://www.facebook.com/",),
        4,
    ),
)
# (name, network url, referrer url)
SOCIALS = (
    ("Facebook", "facebook.com", "https://m.facebook.com/"),
    ("Instagram", "instagram.com", "https://l.instagram.com/"),
    ("Twitter", "twitter.com", "https://t.co/Ab3dE9xYz"),
    ("LinkedIn", "linkedin.com", "https://www.linkedin.com/feed/"),
    ("reddit", "reddit.com", "https://www.reddit.com/r/dataengineering/comments/1abcde/"),
    ("Pinterest", "pinterest.com", "https://www.pinterest.com/pin/123456/"),
    ("GitHub", "github.com", "https://github.com/matomo-org/matomo/issues/1"),
    ("Hacker News", "news.ycombinator.com", "https://news.ycombinator.com/item?id=42424242"),
    (
        "StackOverflow",
        "stackoverflow.com",
        "https://stackoverflow.com/questions/7777777/api-fehler",
    ),
)
MAILER = "https://mail.example-webmail.com/"


# --------------------------------------------------------------------------- site templates


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    dimension: str | None = None  # value of the action-scope custom dimension


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: float
    categories: tuple[str, ...]
    slug: str


@dataclass(frozen=True)
class Goal:
    idgoal: int
    name: str
    description: str
    match_attribute: str
    revenue: float
    allow_multiple: bool = False
    pattern: str = ""
    pattern_type: str = ""
    event_value_as_revenue: bool = False


@dataclass(frozen=True)
class Dimension:
    idcustomdimension: int
    name: str
    scope: str  # "visit" or "action"
    index: int


@dataclass(frozen=True)
class Template:
    """What one kind of site looks like: pages, search, events, referrers, goals."""

    kind: str  # "shop", "blog" or "docs"
    name: str
    host: str
    currency: str
    ecommerce: bool
    search_keyword_param: str
    search_category_param: str
    pages: tuple[Page, ...]
    landing_queries: tuple[str, ...]
    downloads: tuple[str, ...]
    outlinks: tuple[str, ...]
    searches: tuple[tuple[str, str, int], ...]  # keyword, category, result count
    search_keywords: tuple[str, ...]  # search-engine keywords
    websites: tuple[tuple[str, str], ...]  # host, referrer url
    campaigns: tuple[tuple[str, str], ...]  # name (lower case), keyword
    goals: tuple[Goal, ...]
    dimensions: tuple[Dimension, ...]
    products: tuple[Product, ...] = ()
    excluded_parameters: str = ""
    weekend_factor: float = 0.55


def _product(sku: str, name: str, price: float, *categories: str) -> Product:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")  # "Gift Card $50": gift-card-50
    return Product(sku, name, price, categories, slug)


SHOP_PRODUCTS = (
    _product("SKU-TR-001", "Trail Runner X", 129, "Shoes", "Running"),
    _product("SKU-TR-002", "Trail Runner X GTX", 159, "Shoes", "Running"),
    _product("SKU-RD-010", "Road Racer 3", 99.95, "Shoes", "Running"),
    _product("SKU-HK-020", "Alpine Hiker Mid", 149.5, "Shoes", "Hiking"),
    _product("SKU-SN-030", "City Sneaker Low", 89, "Shoes", "Lifestyle"),
    _product("SKU-JK-100", "Rain Shell Jacket", 189, "Apparel", "Jackets"),
    _product("SKU-JK-101", "Down Puffer Vest", 119, "Apparel", "Jackets"),
    _product("SKU-TS-110", "Merino Tee", 59, "Apparel", "Tops"),
    _product("SKU-TS-111", "Tech Long Sleeve", 45, "Apparel", "Tops"),
    _product("SKU-PN-120", "Trail Pants", 89, "Apparel", "Bottoms"),
    _product("SKU-SK-200", "Wool Hiking Socks (3-pack)", 24.99, "Accessories", "Socks"),
    _product("SKU-SK-201", "Running Socks", 12.5, "Accessories", "Socks"),
    _product("SKU-BG-210", "Daypack 22L", 74, "Accessories", "Bags"),
    _product("SKU-HT-220", 'Beanie "Nordic"', 19.9, "Accessories", "Hats"),
    _product("SKU-GC-900", "Gift Card $50", 50, "Gift Cards"),
)

SHOP = Template(
    kind="shop",
    name="Shop",
    host="shop.example.com",
    currency="USD",
    ecommerce=True,
    search_keyword_param="q,query",
    search_category_param="cat",
    pages=(
        Page("/", "Shop Example – Outdoor Gear & Running Shoes", "home"),
        Page("/category/apparel/", "Apparel | Shop Example", "category"),
        Page("/category/shoes/", "Shoes | Shop Example", "category"),
        Page("/category/accessories/", "Accessories | Shop Example", "category"),
        Page("/category/gift-cards/", "Gift Cards | Shop Example", "category"),
        Page("/faq", "FAQ | Shop Example", "content"),
        Page("/size-guide", "Size guide | Shop Example", "content"),
        Page("/shipping-info", "Shipping & returns | Shop Example", "content"),
        Page("/about", "About us | Shop Example", "content"),
        Page("/contact", "Contact | Shop Example", "content"),
        Page("/account/login", "Log in | Shop Example", "account"),
        Page("/account/register", "Create account | Shop Example", "account"),
        Page("/cart", "Your cart | Shop Example", "cart"),
        Page("/checkout", "Checkout | Shop Example", "checkout"),
    ),
    landing_queries=(
        "",
        "?utm_content=carousel-1",
        "?mtm_source=newsletter&mtm_medium=email&mtm_content=hero-button",
        "?mtm_source=newsletter&mtm_medium=email&mtm_content=footer-link",
        "?pk_source=criteo&pk_medium=display",
    ),
    downloads=(
        "/downloads/catalog-winter-2026.pdf",
        "/downloads/size-guide-2026.pdf",
        "/downloads/returns-form.pdf",
    ),
    outlinks=(
        "https://www.ups.com/track?tracknum=1Z999",
        "https://www.instagram.com/shop.example/",
        "https://help.payments-partner.example/faq",
    ),
    searches=(
        ("running shoes", "shoes", 5),
        ("merino", "apparel", 3),
        ("rain jacket", "apparel", 2),
        ("trail runner x", "shoes", 2),
        ("backpack", "accessories", 1),
        ("wool socks", "", 1),
        ("gift card", "", 1),
        ("size chart", "", 0),
        ("snowboard", "", 0),
        ("vegan leather", "", 0),
        ("Winterjacke", "", 0),
    ),
    search_keywords=(
        "shop example",
        "merino tee",
        "wool socks",
        "trail running shoes",
        "rain jacket men",
    ),
    websites=(
        (
            "www.runnersworld-reviews.example",
            "https://www.runnersworld-reviews.example/best-trail-shoes-2026",
        ),
        ("news.example.com", "https://news.example.com/gear-guide"),
        ("dealsfinder.example.net", "https://dealsfinder.example.net/outdoor"),
        ("x.com", "https://x.com/"),
    ),
    campaigns=(
        ("winter-sale", ""),
        ("retargeting", "rain jacket"),
        ("autumn_lookbook", ""),
        ("partner-blog", ""),
        ("brand-search", "trail shoes"),
    ),
    goals=(
        Goal(1, "Newsletter Signup", "Manually triggered via trackGoal(1)", "manually", 0),
        Goal(
            2,
            "Visited Contact Page",
            "URL contains /contact",
            "url",
            5,
            pattern="/contact",
            pattern_type="contains",
        ),
        Goal(
            3,
            "Account Registration",
            "Manual goal, default revenue 10, tracker may override revenue",
            "manually",
            10,
            allow_multiple=True,
        ),
        Goal(
            4,
            "Size Guide Download",
            "Download URL contains size-guide",
            "file",
            0,
            pattern="size-guide",
            pattern_type="contains",
        ),
    ),
    dimensions=(
        Dimension(2, "Page Type", "action", 1),
        Dimension(1, "Customer Tier", "visit", 1),
    ),
    products=SHOP_PRODUCTS,
    excluded_parameters="sessionid,fbclid",
    weekend_factor=1.25,
)

BLOG_ARTICLES = (
    ("/2026/11/why-we-left-ga4/", "Why we left GA4 – and what we learned", "Ana Ruiz"),
    (
        "/2026/11/incremental-models-in-dbt/",
        "Incremental models in dbt: a practical guide",
        "Ben Okafor",
    ),
    (
        "/2026/10/privacy-first-analytics/",
        "Privacy-first analytics: what actually changes?",
        "Dana Kim",
    ),
    ("/2026/11/duckdb-for-analytics-engineers/", "DuckDB for analytics engineers", "Chen Wei"),
    ("/2026/09/python-cli-with-click/", "Building Python CLIs with click", "Ben Okafor"),
    ("/2026/10/matomo-api-deep-dive/", "A deep dive into the Matomo Reporting API", "Ana Ruiz"),
    (
        "/2026/10/bigquery-partitioning-cheat-sheet/",
        "BigQuery partitioning & clustering cheat-sheet",
        "Chen Wei",
    ),
    (
        "/2026/08/sql-window-functions/",
        "SQL window functions <explained> with examples",
        "Dana Kim",
    ),
)

BLOG = Template(
    kind="blog",
    name="Blog",
    host="blog.example.org",
    currency="USD",
    ecommerce=False,
    search_keyword_param="s",
    search_category_param="",
    pages=(
        Page("/", "Example Data Blog – notes on analytics engineering"),
        *(
            Page(path, f"{title} – Example Data Blog", author)
            for path, title, author in BLOG_ARTICLES
        ),
        *(
            Page(f"/tag/{tag}/", f"{tag} Archives – Example Data Blog")
            for tag in ("dbt", "bigquery", "sql", "analytics", "duckdb")
        ),
        Page("/subscribe/", "Subscribe – Example Data Blog"),
        Page("/subscribe/thanks/", "Thanks for subscribing! – Example Data Blog"),
    ),
    landing_queries=("", "?mtm_source=twitter&mtm_medium=social"),
    downloads=("/wp-content/uploads/2026/11/sql-window-functions-cheatsheet.pdf",),
    outlinks=(
        "https://stackoverflow.com/questions/tagged/matomo",
        "https://github.com/duckdb/duckdb",
        "https://docs.getdbt.com/docs/build/incremental-models",
        "https://x.com/exampledatablog",
    ),
    searches=(
        ("dbt incremental", "", 2),
        ("window functions", "", 1),
        ("bigquery partition", "", 1),
        ("duckdb", "", 3),
        ("Ümlaut test", "", 0),
    ),
    search_keywords=(
        "matomo api python",
        "bigquery partition cheat sheet",
        "dbt incremental models",
        "duckdb vs sqlite",
    ),
    websites=(
        ("medium.com", "https://medium.com/@author/analytics-stack"),
        ("dev.to", "https://dev.to/someone/some-post"),
        ("x.com", "https://x.com/"),
    ),
    campaigns=(("weekly-digest", ""), ("launch-week", "dbt")),
    goals=(
        Goal(
            1,
            "Subscribed",
            "Regex URL goal",
            "url",
            2.5,
            pattern=r"^https://blog\.example\.org/subscribe/thanks",
            pattern_type="regex",
        ),
    ),
    dimensions=(Dimension(1, "Author", "action", 1),),
)

DOCS = Template(
    kind="docs",
    name="Docs DE",
    host="docs.example.de",
    currency="EUR",
    ecommerce=False,
    search_keyword_param="suche,q",
    search_category_param="bereich",
    pages=(
        Page("/de/", "Dokumentation – Übersicht"),
        Page("/de/api/authentifizierung/", "API: Authentifizierung"),
        Page("/de/api/endpunkte/", "API: Endpunkte"),
        Page("/de/api/fehlercodes/", "API: Fehlercodes"),
        Page("/de/handbuch/installation/", "Handbuch: Installation"),
        Page("/de/handbuch/datenschutz/", "Handbuch: Datenschutz"),
        Page("/de/faq/", "Häufige Fragen (FAQ)"),
        Page("/de/kontakt/", "Kontakt"),
        Page("/de/änderungsprotokoll/", "Änderungsprotokoll"),
    ),
    landing_queries=("", "?mtm_source=newsletter&mtm_medium=email"),
    downloads=("/downloads/api-referenz.pdf", "/downloads/handbuch-v5.pdf"),
    outlinks=("https://github.com/example/docs-de", "https://www.bsi.bund.de/"),
    searches=(
        ("export csv", "api", 1),
        ("installation", "handbuch", 4),
        ("fehler 403", "api", 1),
        ("datenschutz", "", 2),
        ("Größe ändern", "", 0),
    ),
    search_keywords=("api schlüssel erstellen", "dsgvo analytics", "installation anleitung"),
    websites=(("www.heise.de", "https://www.heise.de/forum/"),),
    campaigns=(("release-5-0", ""),),
    goals=(
        Goal(
            1,
            "Kontaktformular",
            "Event category = form; event value as revenue",
            "event_category",
            0,
            pattern="form",
            pattern_type="exact",
            event_value_as_revenue=True,
        ),
    ),
    dimensions=(),
)

TEMPLATES = (SHOP, BLOG, DOCS)
# Sites 1-3 use the captured zones; later sites cycle through these (fixed offset included).
TIMEZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "UTC-3",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Europe/London",
)
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€"}


@dataclass(frozen=True)
class SiteProfile:
    """One synthetic site: its template, id, time zone and stable action ids."""

    idsite: int
    template: Template
    timezone: str
    action_ids: dict[str, int] = field(repr=False, compare=False, hash=False)
    pages: tuple[Page, ...] = field(repr=False, compare=False, hash=False)  # incl. products
    products: dict[str, Product] = field(repr=False, compare=False, hash=False)  # by path

    @property
    def name(self) -> str:
        return self.template.name if self.idsite <= 3 else f"{self.template.name} {self.idsite}"

    @property
    def host(self) -> str:
        if self.idsite <= 3:
            return self.template.host
        first, _, rest = self.template.host.partition(".")
        return f"{first}{self.idsite}.{rest}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def currency_symbol(self) -> str:
        return CURRENCY_SYMBOLS[self.template.currency]

    def action_id(self, key: str) -> int:
        return self.action_ids[key]


@lru_cache(maxsize=256)
def site_profile(idsite: int) -> SiteProfile:
    template = TEMPLATES[(idsite - 1) % len(TEMPLATES)]
    timezone = TIMEZONES[(idsite - 1) % len(TIMEZONES)]
    # Matomo's idaction is global; each site gets its own block of ids.
    keys: list[str] = []
    for page in _all_pages(template):
        keys.extend(f"url:{page.path}{query}" for query in template.landing_queries)
        keys.append(f"title:{page.title}")
    keys.extend(f"url:{path}" for path in template.downloads)
    keys.extend(f"url:{url}" for url in template.outlinks)
    keys.extend(f"event:{name}" for name in _event_actions(template))
    keys.append("content:hero")
    base = (idsite - 1) * 10_000
    ids = {key: base + number for number, key in enumerate(dict.fromkeys(keys), start=2)}
    products = {f"/product/{p.slug}": p for p in template.products}
    return SiteProfile(idsite, template, timezone, ids, _all_pages(template), products)


def _all_pages(template: Template) -> tuple[Page, ...]:
    products = tuple(
        Page(f"/product/{p.slug}", f"{p.name} | Shop Example", "product") for p in template.products
    )
    return template.pages + products


def _event_actions(template: Template) -> tuple[str, ...]:
    return {
        "shop": ("Subscribe", "Play", "Add to Wishlist", "Click"),
        "blog": ("Reached", "Twitter", "LinkedIn", "Copy link", "Submit"),
        "docs": ("submit", "Copy"),
    }[template.kind]


# --------------------------------------------------------------------------- raw visits


@dataclass(slots=True)
class RawAction:
    """One Live ``actionDetails`` row before rendering."""

    kind: str  # action, search, event, download, outlink, content, goal, order, cart
    ts: int  # UTC epoch
    visible: int  # UTC epoch from which the server shows it
    data: dict[str, Any]
    local: int = 0  # site-local wall clock encoded as UTC (Live ``timestamp``)
    clock: str = ""  # site-local HH:MM:SS
    pretty: str = ""  # site-local "Nov 1, 2026 23:47:16"


@dataclass(slots=True)
class RawVisit:
    idvisit: int
    visitor: dict[str, Any]  # static visit-level fields read while rendering
    actions: list[RawAction]
    referrer: dict[str, Any]
    middle: dict[str, Any]  # static Live keys from referrerType to browserVersion
    tail: dict[str, Any]  # static Live keys from continent to the visit dimensions


@dataclass(frozen=True)
class Visitor:
    """A (possibly returning) visitor: the attributes stable across their visits."""

    visitor_id: str
    device: Device
    place: Place
    resolution: str
    ipv6: bool
    ip_parts: tuple[int, int]
    returning: bool
    user_id: str | None


def _hex16(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]  # noqa: S324 - ids, not security


_MASK = (1 << 64) - 1


def _mix(*values: int) -> int:
    """splitmix64 over the values: a fast, stable hash for arithmetic-derived randomness."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = ((state ^ value) * 0xBF58476D1CE4E5B9) & _MASK
        state = ((state ^ (state >> 31)) * 0x94D049BB133111EB) & _MASK
        state ^= state >> 29
    return state


class _Weighted:
    """Weighted choice from a fixed table by a hash value (no Random object needed)."""

    def __init__(self, items: Sequence[Any], weights: Sequence[int]) -> None:
        self.items = tuple(items)
        self.cumulative = list(itertools.accumulate(weights))

    def pick(self, value: int) -> Any:
        return self.items[bisect.bisect_right(self.cumulative, value % self.cumulative[-1])]


_DEVICES = _Weighted(DEVICES, [d.weight for d in DEVICES])
_PLACES = _Weighted(PLACES, [p.weight for p in PLACES])
_GERMAN = _Weighted(GERMAN_PLACES, [p.weight for p in GERMAN_PLACES])
_ENGINES = _Weighted(SEARCH_ENGINES, [e[5] for e in SEARCH_ENGINES])
_PAGEVIEW_ID = string.ascii_letters + string.digits


class DayGenerator:
    """Generates one (site, local day): visit count, times, visitors, referrers, actions."""

    RETURNING_SHARE = 0.31

    def __init__(
        self,
        profile: SiteProfile,
        seed: int,
        day: dt.date,
        day_index: int,
        visits_per_day: int,
        capacity: int,
        sites: int,
        late_fraction: float,
    ) -> None:
        self.profile = profile
        self.template = profile.template
        self.seed = seed
        self.day = day
        self.day_index = day_index
        self.visits_per_day = visits_per_day
        self.capacity = capacity
        self.late_fraction = late_fraction
        self.rng = random.Random(f"{seed}:{profile.idsite}:{day.isoformat()}")
        self.clock = DayClock.of(day, profile.timezone)
        self.first_idvisit = 1 + (day_index * sites + profile.idsite - 1) * capacity
        self.pool = max(40, visits_per_day * 6)

    # ---- the day's visit skeleton

    def visits(self) -> list[RawVisit]:
        rng = self.rng
        weekend = self.day.weekday() >= 5
        factor = self.template.weekend_factor if weekend else 1.0
        count = max(1, round(self.visits_per_day * factor * rng.uniform(0.85, 1.15)))
        ends = self._end_times(count)
        plans = [self._plan(end) for end in ends]
        plans.sort(key=lambda plan: (plan[0][0], plan[1]))
        # idVisit grows with the visit's first action, like an auto-increment key.
        return [self._visit(index, plan) for index, plan in enumerate(plans)]

    def _end_times(self, count: int) -> list[int]:
        """Last-action times: daytime-weighted, with ties, midnight edges and DST-fold visits."""
        rng, clock = self.rng, self.clock
        ends: list[int] = []
        length = clock.end - clock.start
        while len(ends) < count:
            if ends and rng.random() < 0.06:
                ends.append(rng.choice(ends))  # several visits end in the same second
                continue
            position = rng.betavariate(2.2, 1.6)  # busier in the afternoon/evening
            ends.append(clock.start + int(position * (length - 1)))
        ends.append(rng.choice(ends))  # at least one shared lastActionTimestamp second a day
        ends.append(clock.end - rng.randint(1, 5))  # ends seconds before local midnight
        if rng.random() < 0.5:
            ends.append(clock.start)  # a bounce at exactly 00:00:00 local
        if clock.transition < clock.end:
            # Visits inside the repeated (or skipped) hour of a DST change.
            for delta in (-1800, -600, 600, 1800):
                ends.append(clock.transition + delta + rng.randint(0, 300))
        return ends

    def _plan(self, end: int) -> tuple[list[int], int]:
        """Request times of a visit ending at ``end`` (none before local midnight)."""
        rng = self.rng
        # About a third bounce; the rest follow a long-tailed count of requests.
        steps = 1 if rng.random() < 0.36 else min(2 + int(rng.expovariate(0.22)), 16)
        times = [end]
        for _ in range(steps - 1):
            gap = int(rng.lognormvariate(3.6, 0.9)) + 2
            if times[-1] - gap < self.clock.start:
                break
            times.append(times[-1] - gap)
        times.reverse()
        return times, rng.randrange(1 << 30)

    # ---- one visit

    def _visit(self, index: int, plan: tuple[list[int], int]) -> RawVisit:
        times, _ = plan
        rng = self.rng  # visits are built in id order, so one stream stays deterministic
        idvisit = self.first_idvisit + index
        visitor = self._visitor(rng, index)
        referrer = self._referrer(rng)
        builder = _VisitBuilder(self, rng, idvisit, times, referrer, visitor)
        actions = builder.build()
        self._make_late(idvisit, actions)
        fields = self._visit_fields(rng, visitor, times[0])
        middle, tail = _static_parts(self.profile, referrer, fields)
        return RawVisit(idvisit, fields, actions, referrer, middle, tail)

    def _visitor(self, rng: random.Random, index: int) -> Visitor:
        returning = rng.random() < self.RETURNING_SHARE
        number = (
            rng.randrange(self.pool)
            if returning
            else (self.pool + self.day_index * self.capacity + index)
        )
        # A pool visitor's attributes depend only on (seed, site, number): stable across days.
        bits = _mix(self.seed, self.profile.idsite, number)
        device: Device = _DEVICES.pick(bits)
        german = self.template.kind == "docs" and (bits >> 8) % 100 < 85
        place: Place = (_GERMAN if german else _PLACES).pick(bits >> 16)
        user_id = None
        share = {"shop": 45, "blog": 10, "docs": 0}[self.template.kind]
        if returning and (bits >> 24) % 100 < share:
            prefix = {"shop": "cust-", "blog": "reader-"}[self.template.kind]
            user_id = f"{prefix}{1000 + number}"
            if self.template.kind == "shop" and (bits >> 32) % 100 < 30:
                user_id = f"customer{1000 + number}@example.com"
        resolutions = RESOLUTIONS[device.device_type]
        return Visitor(
            # With a user id Matomo overwrites the visitor id with sha1(userId)[:16].
            visitor_id=_hex16(user_id) if user_id else f"{_mix(bits, 1):016x}",
            device=device,
            place=place,
            resolution=resolutions[(bits >> 40) % len(resolutions)],
            ipv6=(bits >> 48) % 100 < 12,
            ip_parts=(2 + (bits >> 20) % 222, (bits >> 28) % 256),
            returning=returning,
            user_id=user_id,
        )

    def _referrer(self, rng: random.Random) -> dict[str, Any]:
        template = self.template
        roll = rng.random()
        if roll < 0.24:
            url = None
            if rng.random() < 0.12:
                url = self.profile.base_url + rng.choice(template.pages).path
            return _referrer_fields("direct", "", "", url)
        if roll < 0.6:
            name, engine_url, icon, with_kw, without_kw, _ = _ENGINES.pick(rng.getrandbits(32))
            with_keyword = with_kw and rng.random() < 0.45
            keyword = rng.choice(template.search_keywords) if with_keyword else ""
            url = with_kw.format(q=keyword.replace(" ", "+")) if keyword else rng.choice(without_kw)
            fields = _referrer_fields("search", name, keyword or "Keyword not defined", url)
            fields["referrerSearchEngineUrl"] = engine_url
            fields["referrerSearchEngineIcon"] = (
                f"plugins/Morpheus/icons/dist/searchEngines/{icon}.png"
            )
            return fields
        if roll < 0.73:
            name, network, url = rng.choice(SOCIALS)
            fields = _referrer_fields("social", name, "", url)
            fields["referrerSocialNetworkUrl"] = network
            fields["referrerSocialNetworkIcon"] = (
                f"plugins/Morpheus/icons/dist/socials/{network}.png"
            )
            return fields
        if roll < 0.84:
            host, url = rng.choice(template.websites)
            return _referrer_fields("website", host, "", url)
        name, keyword = rng.choice(template.campaigns)
        url = MAILER if rng.random() < 0.35 else None
        if url and not keyword:
            keyword = "mail.example-webmail.com"  # Matomo's default campaign keyword: the host
        fields = _referrer_fields("campaign", name, keyword, url)
        fields["_landing_query"] = rng.choice(template.landing_queries[1:] or ("",))
        return fields

    def _visit_fields(self, rng: random.Random, visitor: Visitor, first: int) -> dict[str, Any]:
        device, place = visitor.device, visitor.place
        a, b = visitor.ip_parts
        ip = f"2a02:{a:x}{b:02x}:{rng.randrange(1 << 16):x}::" if visitor.ipv6 else f"{a}.{b}.0.0"
        local = (first + place.utc_offset * 3600) % 86400
        seconds_since = 0
        visit_count = 1
        if visitor.returning:
            seconds_since = rng.randint(3600, 14 * 86400)
            visit_count = rng.randint(2, 9)
        return {
            "visitIp": ip,
            "visitorId": visitor.visitor_id,
            "fingerprint": f"{_mix(int(visitor.visitor_id, 16), self.day_index):016x}",
            "userId": visitor.user_id,
            "returning": visitor.returning,
            "visitCount": visit_count,
            "secondsSinceFirstVisit": seconds_since
            + (rng.randint(0, 30) * 86400 if visitor.returning else 0),
            "secondsSinceLastVisit": seconds_since,
            "device": device,
            "place": place,
            "resolution": visitor.resolution,
            "visitLocalTime": f"{local // 3600:02d}:{local % 3600 // 60:02d}:{local % 60:02d}",
            "visitLocalHour": str(local // 3600),
            "tier": ("vip" if rng.random() < 0.2 else "member") if visitor.user_id else "guest",
        }

    def _make_late(self, idvisit: int, actions: list[RawAction]) -> None:
        """With ``late_fraction``, the tail (or all) of a visit reaches the server late.

        Decided by a hash of the visit id, not the day's random stream, so a dataset with late
        data holds exactly the traffic of the same dataset without it."""
        bits = _mix(self.seed, idvisit, 0x1A7E)
        if not actions or (bits % 10_000) / 10_000 >= self.late_fraction:
            return
        cut = (bits >> 16) % len(actions) if (bits >> 32) % 10 < 7 else 0
        delay = 120 + (bits >> 40) % (4 * 3600)
        for action in actions[cut:]:
            action.visible = action.ts + delay


def _static_parts(
    profile: SiteProfile, referrer: dict[str, Any], fields: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The visit keys that never change with the server clock, in Live's key order."""
    device: Device = fields["device"]
    place: Place = fields["place"]
    middle = {k: v for k, v in referrer.items() if not k.startswith("_")}
    middle.update(
        {
            "languageCode": place.language_code,
            "language": place.language,
            "deviceType": device.device_type,
            "deviceTypeIcon": _icon("devices", device.device_type.lower()),
            "deviceBrand": device.brand,
            "deviceModel": device.model,
            "operatingSystem": f"{device.os_name} {device.os_version}".strip(),
            "operatingSystemName": device.os_name,
            # Live shows iPadOS with the iOS icon (reports use the IPA one).
            "operatingSystemIcon": "plugins/Morpheus/icons/dist/os/"
            f"{'IOS' if device.os_code == 'IPA' else device.os_code}.png",
            "operatingSystemCode": device.os_code,
            "operatingSystemVersion": device.os_version,
            "browserFamily": device.engine,
            "browserFamilyDescription": device.engine_description,
            "browser": f"{device.browser} {device.browser_version}",
            "browserName": device.browser,
            "browserIcon": f"plugins/Morpheus/icons/dist/browsers/{device.browser_code}.png",
            "browserCode": device.browser_code,
            "browserVersion": device.browser_version,
        }
    )
    tail: dict[str, Any] = {
        "continent": place.continent,
        "continentCode": place.continent_code,
        "country": place.country,
        "countryCode": place.country_code,
        "countryFlag": f"plugins/Morpheus/icons/dist/flags/{place.country_code}.png",
        "region": place.region,
        "regionCode": place.region_code,
        "city": place.city,
        "location": f"{place.city}, {place.region}, {place.country}",
        "latitude": None,
        "longitude": None,
        "visitLocalTime": fields["visitLocalTime"],
        "visitLocalHour": fields["visitLocalHour"],
        "daysSinceLastVisit": fields["secondsSinceLastVisit"] // 86400,
        "secondsSinceLastVisit": fields["secondsSinceLastVisit"],
        "resolution": fields["resolution"],
        "plugins": "cookie, pdf",
        "pluginsIcons": None,  # a fresh list per rendering
    }
    for dimension in profile.template.dimensions:
        if dimension.scope == "visit":
            tail[f"dimension{dimension.idcustomdimension}"] = fields["tier"]
    return middle, tail


def _icon(kind: str, name: str) -> str:
    return f"plugins/Morpheus/icons/dist/{kind}/{name}.png"


def _referrer_fields(kind: str, name: str, keyword: str, url: str | None) -> dict[str, Any]:
    labels = {
        "direct": "Direct Entry",
        "search": "Search Engines",
        "website": "Websites",
        "campaign": "Campaigns",
        "social": "Social Networks",
    }
    return {
        "referrerType": kind,
        "referrerTypeName": labels[kind],
        "referrerName": name,
        "referrerKeyword": keyword,
        "referrerKeywordPosition": None,
        "referrerUrl": url,
        "referrerSearchEngineUrl": None,
        "referrerSearchEngineIcon": None,
        "referrerSocialNetworkUrl": None,
        "referrerSocialNetworkIcon": None,
    }


class _VisitBuilder:
    """Turns request times into the actions of one visit, following the site's script."""

    def __init__(
        self,
        day: DayGenerator,
        rng: random.Random,
        idvisit: int,
        times: list[int],
        referrer: dict[str, Any],
        visitor: Visitor,
    ) -> None:
        self.day, self.rng, self.idvisit = day, rng, idvisit
        self.profile, self.template = day.profile, day.template
        self.times = times
        self.referrer = referrer
        self.visitor = visitor
        self.actions: list[RawAction] = []
        self.page: dict[str, Any] | None = None  # current pageview data
        self.cart: list[tuple[Product, int]] = []
        self.viewed: list[Product] = []
        self.converted: set[int] = set()

    def build(self) -> list[RawAction]:
        steps = {"shop": self._shop_step, "blog": self._blog_step, "docs": self._docs_step}
        step = steps[self.template.kind]
        self._landing(self.times[0])
        for index, when in enumerate(self.times[1:], start=1):
            following = self.times[index + 1] if index + 1 < len(self.times) else None
            step(when, following)
        if self.cart and self.template.ecommerce:
            self._add("cart", self.times[-1], self._cart_data())
        self.actions.sort(key=lambda action: action.ts)  # stable: same-second order kept
        clock, (_, short) = self.day.clock, _pretty_dates(self.day.day)
        for action in self.actions:
            action.local = clock.local(action.ts)
            action.clock = clock.clock(action.ts)
            action.pretty = f"{short} {action.clock}"
        return self.actions

    def _later(self, ts: int, following: int | None) -> int:
        """A time after ``ts`` but before the visit's next request (a request of its own)."""
        if following is None or following - ts < 3:
            return ts
        return ts + self.rng.randint(1, min(40, following - ts - 1))

    # ---- primitives

    def _add(self, kind: str, ts: int, data: dict[str, Any]) -> None:
        self.actions.append(RawAction(kind, ts, ts, data))

    def _pageview(
        self,
        ts: int,
        page: Page,
        query: str = "",
        extra: dict[str, Any] | None = None,
        url_key: str | None = None,
    ) -> None:
        url = self.profile.base_url + page.path + query
        key = url_key or f"url:{page.path}{query}"
        data = {
            "url": url,
            "title": page.title,
            "idaction": self.profile.action_id(key)
            if key in self.profile.action_ids
            else _dynamic_action_id(self.idvisit),
            "idpageview": _pageview_id(self.rng),
            "load_ms": 600 + self.rng.getrandbits(12),
            "dimension": page.dimension,
        }
        if extra:
            data.update(extra)
        self.page = data
        self._add("action", ts, data)

    def _in_page(self, kind: str, ts: int, data: dict[str, Any]) -> None:
        """An action fired on the current page (events, downloads, outlinks, contents)."""
        page = self.page or {}
        data.setdefault("url", page.get("url"))
        data["idpageview"] = page.get("idpageview")
        self._add(kind, ts, data)

    def _goal(
        self, ts: int, idgoal: int, revenue: float | None = None, trigger: RawAction | None = None
    ) -> None:
        goal = next(g for g in self.template.goals if g.idgoal == idgoal)
        if idgoal in self.converted and not goal.allow_multiple:
            return
        self.converted.add(idgoal)
        url = (trigger.data.get("url") if trigger else None) or (self.page or {}).get("url")
        self._add(
            "goal",
            ts,
            {
                "idgoal": idgoal,
                "name": goal.name,
                "revenue": goal.revenue if revenue is None else revenue,
                "trigger": trigger,  # None: a manual trackGoal request of its own
                "url": url,
            },
        )

    def _search(self, ts: int) -> None:
        keyword, category, count = self.rng.choice(self.template.searches)
        if category and self.rng.random() < 0.3:
            category = ""
        self._add(
            "search",
            ts,
            {
                "keyword": keyword,
                "category": category,
                "count": count,
                "idpageview": _pageview_id(self.rng),
            },
        )

    def _download(self, ts: int, path: str) -> RawAction:
        self._in_page(
            "download",
            ts,
            {
                "url": self.profile.base_url + path,
                "idaction": self.profile.action_id(f"url:{path}"),
            },
        )
        return self.actions[-1]

    def _outlink(self, ts: int) -> None:
        url = self.rng.choice(self.template.outlinks)
        self._in_page("outlink", ts, {"url": url, "idaction": self.profile.action_id(f"url:{url}")})

    def _event(
        self, ts: int, category: str, action: str, name: str, value: float | None = None
    ) -> RawAction:
        data: dict[str, Any] = {
            "category": category,
            "action": action,
            "name": name,
            "idaction": self.profile.action_id(f"event:{action}"),
        }
        if value is not None:
            data["value"] = value
        self._in_page("event", ts, data)
        return self.actions[-1]

    def _landing(self, ts: int) -> None:
        pages = self.profile.pages
        query = self.referrer.pop("_landing_query", "")
        # The home page lands a third of the visits.
        landing = pages[0] if self.rng.random() < 0.33 else self.rng.choice(pages)
        if landing.path in ("/cart", "/checkout", "/subscribe/thanks/"):
            landing = pages[0]
        self._visit_page(ts, landing, query)

    def _visit_page(self, ts: int, page: Page, query: str = "") -> None:
        extra: dict[str, Any] | None = None
        product = self.profile.products.get(page.path)
        if product is not None:
            self.viewed.append(product)
            extra = {"product": product}
        self._pageview(ts, page, query, extra)
        if page.path == "/" and self.template.kind == "shop":
            interaction = self.rng.random() < 0.15
            self._in_page(
                "content",
                ts,
                {
                    "interaction": "click" if interaction else None,
                    "idaction": self.profile.action_id("content:hero"),
                },
            )
        if page.path == "/contact":
            self._goal(ts, 2, trigger=self.actions[-1])
        if page.path == "/subscribe/thanks/":
            self._goal(ts, 1, trigger=self.actions[-1])

    # ---- site scripts (one request per call)

    def _shop_step(self, ts: int, following: int | None) -> None:
        rng, template = self.rng, self.template
        roll = rng.random()
        if self.cart and roll < 0.45:
            if (self.page or {}).get("url", "").endswith("/checkout"):
                self._order(ts)
            else:
                self._visit_page(ts, _page(template, "/checkout"))
            return
        if roll < 0.36:
            product = rng.choice(template.products)
            self._visit_page(
                ts, Page(f"/product/{product.slug}", f"{product.name} | Shop Example", "product")
            )
        elif roll < 0.5:
            self._visit_page(ts, rng.choice(template.pages[1:5]))
        elif roll < 0.58:
            self._search(ts)
        elif roll < 0.66 and self.viewed:
            product = self.viewed[-1]
            self.cart.append((product, 1 if rng.random() < 0.8 else 2))
            self._visit_page(ts, _page(template, "/cart"))
        elif roll < 0.72:
            self._newsletter_or_video(ts)
        elif roll < 0.76:
            path = rng.choice(template.downloads)
            download = self._download(ts, path)
            if "size-guide" in path:
                self._goal(ts, 4, trigger=download)
        elif roll < 0.79:
            self._outlink(ts)
        elif roll < 0.83:
            self._visit_page(ts, _page(template, "/contact"))
        elif roll < 0.87:
            self._visit_page(ts, _page(template, "/account/register"))
            revenue = rng.choice((None, None, 12.5, 22.5, 7.5))
            when = self._later(ts, following)
            self._goal(when, 3, revenue)
            if rng.random() < 0.15:
                self._goal(when, 3, revenue)  # allow_multiple: registered twice
        elif roll < 0.9:
            self._event(ts, "Carousel", "Click", f"slide-{rng.randint(1, 5)}")
        else:
            self._visit_page(ts, rng.choice(template.pages[5:12]))

    def _newsletter_or_video(self, ts: int) -> None:
        rng = self.rng
        if self.viewed and rng.random() < 0.5:
            product = self.viewed[-1]
            if rng.random() < 0.5:
                self._event(
                    ts, "Video", "Play", f"Product video: {product.name}", rng.randint(5, 90)
                )
            else:
                self._event(ts, "Product", "Add to Wishlist", product.sku)
            return
        # The signup form fires trackGoal(1) and the event in the same second.
        self._goal(ts, 1)
        self._event(ts, "Newsletter", "Subscribe", "footer-form")

    def _order(self, ts: int) -> None:
        items = _merge_items(self.cart)
        subtotal = round2(sum(p.price * q for p, q in items))
        discount = round2(subtotal * 0.1) if self.rng.random() < 0.3 else 0.0
        tax = round2((subtotal - discount) * 0.08)
        shipping = 4.99 if subtotal < 100 else 0.0
        revenue = round2(subtotal - discount + tax + shipping)
        order_id = f"ORD-{100000 + self.idvisit}"
        self._add(
            "order",
            ts,
            {
                "orderId": order_id,
                "revenue": revenue,
                "subtotal": subtotal,
                "tax": tax,
                "shipping": shipping,
                "discount": discount,
                "items": items,
            },
        )
        self.cart = []
        thanks = Page(
            f"/checkout/thank-you?order={order_id}",
            "Thank you for your order | Shop Example",
            "checkout",
        )
        self._pageview(ts, thanks, url_key=f"order:{order_id}")

    def _cart_data(self) -> dict[str, Any]:
        items = _merge_items(self.cart)
        return {"revenue": round2(sum(p.price * q for p, q in items)), "items": items}

    def _blog_step(self, ts: int, following: int | None) -> None:
        rng, template = self.rng, self.template
        roll = rng.random()
        articles = template.pages[1 : 1 + len(BLOG_ARTICLES)]
        on_article = (self.page or {}).get("dimension") is not None
        if roll < 0.45:
            self._visit_page(ts, rng.choice(articles))
        elif roll < 0.6 and on_article:
            self._event(ts, "Scroll", "Reached", "75%")
        elif roll < 0.66 and on_article:
            action = rng.choice(("Twitter", "LinkedIn", "Copy link"))
            self._event(ts, "Share", action, (self.page or {}).get("url", ""))
        elif roll < 0.69 and on_article:
            self._event(ts, "Comments", "Submit", (self.page or {}).get("url", ""))
        elif roll < 0.76:
            self._search(ts)
        elif roll < 0.8:
            page = _page(template, "/subscribe/")
            if (self.page or {}).get("url", "").endswith("/subscribe/"):
                page = _page(template, "/subscribe/thanks/")
            self._visit_page(ts, page)
        elif roll < 0.84:
            self._download(ts, rng.choice(template.downloads))
        elif roll < 0.88:
            self._outlink(ts)
        else:
            self._visit_page(ts, rng.choice(template.pages))

    def _docs_step(self, ts: int, following: int | None) -> None:
        rng, template = self.rng, self.template
        roll = rng.random()
        if roll < 0.5:
            self._visit_page(ts, rng.choice(template.pages))
        elif roll < 0.62:
            self._search(ts)
        elif roll < 0.7:
            self._visit_page(ts, _page(template, "/de/kontakt/"))
            value = rng.choice((25, 50, 120, 0, None))
            event = self._event(ts, "form", "submit", "kontakt", value)
            self._goal(ts, 1, revenue=float(value or 0), trigger=event)
        elif roll < 0.78:
            self._event(ts, "Code", "Copy", rng.choice(("python-beispiel", "curl-beispiel")))
        elif roll < 0.86:
            self._download(ts, rng.choice(template.downloads))
        else:
            self._outlink(ts)


def _page(template: Template, path: str) -> Page:
    return next(p for p in template.pages if p.path == path)


def _merge_items(cart: list[tuple[Product, int]]) -> list[tuple[Product, int]]:
    merged: dict[str, tuple[Product, int]] = {}
    for product, quantity in cart:
        previous = merged.get(product.sku, (product, 0))[1]
        merged[product.sku] = (product, previous + quantity)
    return list(merged.values())


_PAIRS = [a + b for a in _PAGEVIEW_ID for b in _PAGEVIEW_ID]


def _pageview_id(rng: random.Random) -> str:
    """The JS tracker's 6-character pageview id."""
    bits = rng.getrandbits(36)
    pairs, size = _PAIRS, len(_PAIRS)
    return pairs[bits % size] + pairs[bits // size % size] + pairs[bits // size // size % size]


_DYNAMIC_ACTION_BASE = 1_000_000_000


def _dynamic_action_id(idvisit: int) -> int:
    """idaction of per-order URLs (thank-you pages): unique, derived from the visit id."""
    return _DYNAMIC_ACTION_BASE + idvisit


# --------------------------------------------------------------------------- rendering

_CONVERSIONS = ("goal", "order", "cart")
_ICONS = {
    "download": (
        "plugins/Morpheus/images/download.png",
        "plugins/Morpheus/images/download.svg",
        "Download",
    ),
    "outlink": ("plugins/Morpheus/images/link.png", "plugins/Morpheus/images/link.svg", "Outlink"),
    "search": (
        "plugins/Morpheus/images/search.png",
        "plugins/Morpheus/images/search.svg",
        "Site Search",
    ),
    "event": ("plugins/Morpheus/images/event.png", "plugins/Morpheus/images/event.svg", "Event"),
}
_PLUGIN_ICONS = [
    {"pluginIcon": "plugins/Morpheus/icons/dist/plugins/cookie.png", "pluginName": "cookie"},
    {"pluginIcon": "plugins/Morpheus/icons/dist/plugins/pdf.png", "pluginName": "pdf"},
]
_VISIT_TIMEOUT = 1800


def render_visit(
    raw: RawVisit, profile: SiteProfile, clock: DayClock, now: int
) -> dict[str, Any] | None:
    """The Live visit object as the server shows it at ``now`` (None: nothing visible yet)."""
    visible = [a for a in raw.actions if a.visible <= now]
    if not visible:
        return None
    renderer = _Renderer(raw, profile, clock)
    duration = visit_duration(visible)
    details = renderer.actions(visible, duration)
    return renderer.visit(visible, details, duration)


class _Renderer:
    def __init__(self, raw: RawVisit, profile: SiteProfile, clock: DayClock) -> None:
        self.raw, self.profile, self.clock = raw, profile, clock
        self.template = profile.template
        self.symbol = profile.currency_symbol
        self.date_pretty, self.date_short = _pretty_dates(clock.day)
        self.action_dimensions = [
            f"dimension{d.idcustomdimension}"
            for d in self.template.dimensions
            if d.scope == "action"
        ]

    # ---- actionDetails

    def actions(self, visible: list[RawAction], duration: int) -> list[dict[str, Any]]:
        page_ids = {id(a): self.raw.idvisit * 100 + n for n, a in enumerate(self.raw.actions)}
        spent = _time_spent(visible, duration)
        details: list[dict[str, Any]] = []
        position: int | None = None
        for action in visible:
            if action.kind in ("action", "search"):
                position = (position or 0) + 1
            render = getattr(self, f"_{action.kind}")  # one _<kind> method per row kind
            details.append(render(action, page_ids, position, spent.get(id(action), 0)))
        return details

    def _common_tail(self, row: dict[str, Any]) -> dict[str, Any]:
        for key in self.action_dimensions:
            row[key] = None
        return row

    def _action(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        data = action.data
        load = data["load_ms"]
        row: dict[str, Any] = {
            "type": "action",
            "url": data["url"],
            "pageTitle": data["title"],
            "pageIdAction": data["idaction"],
            "idpageview": data["idpageview"],
            "serverTimePretty": action.pretty,
            "pageId": page_ids[id(action)],
            "pageLoadTime": f"{load / 1000:.2f}s",
        }
        product: Product | None = data.get("product")
        if product is not None:
            row["productViewPrice"] = number(product.price)
            row["productViewName"] = product.name
            row["productViewSku"] = product.sku
        row.update(
            {
                "timeSpent": spent,
                "timeSpentPretty": pretty_duration(spent),
                "pageLoadTimeMilliseconds": load,
                "pageviewPosition": position,
                "title": data["title"],
                "subtitle": data["url"],
                "icon": "",
                "iconSVG": "plugins/Morpheus/images/action.svg",
                "timestamp": action.local,
            }
        )
        if product is not None:
            row["productViewCategories"] = list(product.categories)
        for key in self.action_dimensions:
            row[key] = data.get("dimension")
        return row

    def _content(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        interaction = action.data["interaction"]
        kind = "contentinteraction" if interaction else "contentimpression"
        row = {
            "type": 13,
            "url": action.data["url"],
            "pageTitle": None,
            "pageIdAction": action.data["idaction"],
            "idpageview": action.data["idpageview"],
            "serverTimePretty": action.pretty,
            "pageId": page_ids[id(action)],
            "contentName": "Hero Banner",
            "contentPiece": "/img/hero-winter-sale.jpg",
            "contentTarget": "/category/apparel/",
            "contentInteraction": interaction,
            "pageviewPosition": position,
            "icon": f"plugins/Morpheus/images/{kind}.png",
            "iconSVG": f"plugins/Morpheus/images/{kind}.svg",
            "title": "Content Interaction" if interaction else "Content Impression",
            "subtitle": "Hero Banner - /img/hero-winter-sale.jpg",
            "timestamp": action.local,
        }
        return self._common_tail(row)

    def _link(
        self, action: RawAction, page_ids: dict[int, int], position: int | None
    ) -> dict[str, Any]:
        icon, svg, title = _ICONS[action.kind]
        row = {
            "type": action.kind,
            "url": action.data["url"],
            "pageTitle": None,
            "pageIdAction": action.data["idaction"],
            "idpageview": action.data["idpageview"],
            "serverTimePretty": action.pretty,
            "pageId": page_ids[id(action)],
            "pageviewPosition": position,
            "icon": icon,
            "iconSVG": svg,
            "title": title,
            "subtitle": action.data["url"],
            "timestamp": action.local,
        }
        return self._common_tail(row)

    def _download(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        return self._link(action, page_ids, position)

    def _outlink(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        return self._link(action, page_ids, position)

    def _search(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        data = action.data
        subtitle = data["keyword"]
        if data["category"]:
            subtitle += f" - Search Category: {data['category']}"
        if data["count"]:
            subtitle += f" - Search Results Count: {data['count']}"
        icon, svg, title = _ICONS["search"]
        row = {
            "type": "search",
            "url": None,
            "pageIdAction": None,
            "idpageview": data["idpageview"],
            "serverTimePretty": action.pretty,
            "pageId": page_ids[id(action)],
            "siteSearchKeyword": data["keyword"],
            "siteSearchCategory": data["category"],
            "siteSearchCount": data["count"],
            "pageviewPosition": position,
            "icon": icon,
            "iconSVG": svg,
            "title": title,
            "subtitle": subtitle,
            "timestamp": action.local,
        }
        return self._common_tail(row)

    def _event(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        data = action.data
        icon, svg, title = _ICONS["event"]
        row = {
            "type": "event",
            "url": data["url"],
            "pageIdAction": data["idaction"],
            "idpageview": data["idpageview"],
            "serverTimePretty": action.pretty,
            "pageId": page_ids[id(action)],
            "eventCategory": data["category"],
            "eventAction": data["action"],
            "pageviewPosition": position,
            "timestamp": action.local,
            "icon": icon,
            "iconSVG": svg,
            "title": title,
            # Matomo's own (unbalanced) quoting.
            "subtitle": f'Category: "{data["category"]}\', Action: "{data["action"]}"',
            "eventName": data["name"],
        }
        if "value" in data:
            row["eventValue"] = number(data["value"])
        return self._common_tail(row)

    def _goal(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        data = action.data
        trigger: RawAction | None = data["trigger"]
        revenue = data["revenue"]
        subtitle = data["name"]
        if revenue:
            subtitle += f" ({money(revenue, self.symbol)} revenue)"
        referrer = self.raw.referrer
        kind = referrer["referrerType"]
        row = {
            "type": "goal",
            "goalName": data["name"],
            "goalId": data["idgoal"],
            "idpageview": trigger.data["idpageview"] if trigger else None,
            "revenue": number(revenue),
            "goalPageId": page_ids[id(trigger)] if trigger else None,
            "serverTimePretty": action.pretty,
            "url": data["url"],
            # The conversion's attributed referrer (log_conversion.referer_*).
            "referrerType": kind,
            "referrerName": referrer["referrerName"] or None,
            "referrerKeyword": (
                referrer["referrerKeyword"]
                if kind in ("search", "campaign")
                and referrer["referrerKeyword"] != "Keyword not defined"
                else None
            ),
            "icon": "plugins/Morpheus/images/goal.png",
            "iconSVG": "plugins/Morpheus/images/goal.svg",
            "title": "Goal conversion",
            "subtitle": subtitle,
            "timestamp": action.local,
        }
        return self._common_tail(row)

    def _items(self, items: list[tuple[Product, int]]) -> list[dict[str, Any]]:
        return [
            {
                "itemSKU": product.sku,
                "itemName": product.name,
                "itemCategory": product.categories[0],
                "price": number(product.price),
                "quantity": quantity,
                "categories": list(product.categories),
            }
            for product, quantity in items
        ]

    def _order(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        data = action.data
        quantity = sum(q for _, q in data["items"])
        names = ", ".join(p.name for p, _ in data["items"])
        row = {
            "type": "ecommerceOrder",
            "orderId": data["orderId"],
            "revenue": number(data["revenue"]),
            "revenueSubTotal": number(data["subtotal"]),
            "revenueTax": number(data["tax"]),
            "revenueShipping": number(data["shipping"]),
            "revenueDiscount": number(data["discount"]),
            "items": quantity,
            "serverTimePretty": action.pretty,
            "idpageview": None,
            "itemDetails": self._items(data["items"]),
            "icon": "plugins/Morpheus/images/ecommerceOrder.png",
            "iconSVG": "plugins/Morpheus/images/ecommerceOrder.svg",
            "title": f"Ordered ({data['orderId']})",
            "subtitle": _basket(money(data["revenue"], self.symbol), quantity, names),
            "timestamp": action.local,
        }
        return self._common_tail(row)

    def _cart(
        self, action: RawAction, page_ids: dict[int, int], position: int | None, spent: int
    ) -> dict[str, Any]:
        data = action.data
        quantity = sum(q for _, q in data["items"])
        names = ", ".join(p.name for p, _ in data["items"])
        row = {
            "type": "ecommerceAbandonedCart",
            "revenue": number(data["revenue"]),
            "items": quantity,
            "serverTimePretty": action.pretty,
            "idpageview": None,
            "itemDetails": self._items(data["items"]),
            "icon": "plugins/Morpheus/images/ecommerceAbandonedCart.png",
            "iconSVG": "plugins/Morpheus/images/ecommerceAbandonedCart.svg",
            "title": "Abandoned Cart",
            "subtitle": _basket(money(data["revenue"], self.symbol), quantity, names),
            "timestamp": action.local,
        }
        return self._common_tail(row)

    # ---- the visit

    def visit(
        self, visible: list[RawAction], details: list[dict[str, Any]], duration: int
    ) -> dict[str, Any]:
        raw, template = self.raw, self.template
        fields = raw.visitor
        last_action = max(visible, key=lambda a: a.ts)
        first, last = visible[0].ts, last_action.ts
        kinds = [a.kind for a in visible]
        actions = sum(1 for k in kinds if k in ("action", "search", "event", "download", "outlink"))
        goals = sum(1 for k in kinds if k == "goal")
        ordered, abandoned = "order" in kinds, "cart" in kinds
        converted = 1 if goals or ordered else 0
        status = (
            "orderedThenAbandonedCart"
            if ordered and abandoned
            else "ordered"
            if ordered
            else "abandonedCart"
            if abandoned
            else "none"
        )
        returning = fields["returning"]
        visitor_type = "returning" if returning else "new"
        days_first = fields["secondsSinceFirstVisit"] // 86400
        visit: dict[str, Any] = {
            "idSite": self.profile.idsite,
            "idVisit": raw.idvisit,
            "visitIp": fields["visitIp"],
            "visitorId": fields["visitorId"],
            "fingerprint": fields["fingerprint"],
            "actionDetails": details,
            "goalConversions": goals,
            "siteCurrency": template.currency,
            "siteCurrencySymbol": self.symbol,
            "serverDate": _utc_date(last // 86400),
            "visitServerHour": str(last // 3600 % 24),
            "lastActionTimestamp": last,
            "lastActionDateTime": f"{_utc_date(last // 86400)} {_hms(last % 86400)}",
            "siteName": self.profile.name,
            "serverTimestamp": last,
            "firstActionTimestamp": first,
            "serverTimePretty": last_action.clock,
            "serverDatePretty": self.date_pretty,
            "serverDatePrettyFirstAction": self.date_pretty,
            "serverTimePrettyFirstAction": visible[0].clock,
            "userId": fields["userId"],
            "visitorType": visitor_type,
            "visitorTypeIcon": "plugins/Live/images/returningVisitor.png" if returning else None,
            "visitConverted": converted,
            "visitConvertedIcon": "plugins/Morpheus/images/goal.svg" if converted else None,
            "visitCount": fields["visitCount"],
            "visitEcommerceStatus": status,
            "visitEcommerceStatusIcon": _status_icon(status),
            "daysSinceFirstVisit": days_first,
            "secondsSinceFirstVisit": fields["secondsSinceFirstVisit"],
            "daysSinceLastEcommerceOrder": 0,
            "secondsSinceLastEcommerceOrder": None,
            "visitDuration": duration,
            "visitDurationPretty": pretty_duration(duration),
            "searches": kinds.count("search"),
            "actions": actions,
            "interactions": kinds.count("action") + kinds.count("search"),
        }
        visit.update(raw.middle)
        if template.ecommerce:
            visit.update(self._ecommerce_totals(visible))
        visit["events"] = kinds.count("event")
        visit.update(raw.tail)
        visit["pluginsIcons"] = [dict(icon) for icon in _PLUGIN_ICONS]  # fresh: callers mutate
        return visit

    def _ecommerce_totals(self, visible: list[RawAction]) -> dict[str, Any]:
        """The visitor's ecommerce totals (here: this visit's); SUM()s are strings when > 0."""
        orders = [a for a in visible if a.kind == "order"]
        carts = [a for a in visible if a.kind == "cart"]

        def totals(rows: list[RawAction]) -> tuple[int | float, int, int | str]:
            revenue = round2(sum(r.data["revenue"] for r in rows))
            items = sum(q for r in rows for _, q in r.data["items"])
            return number(revenue), len(rows), str(items) if items else 0

        revenue, count, items = totals(orders)
        cart_revenue, cart_count, cart_items = totals(carts)
        return {
            "totalEcommerceRevenue": revenue,
            "totalEcommerceConversions": count,
            "totalEcommerceItems": items,
            "totalAbandonedCartsRevenue": cart_revenue,
            "totalAbandonedCarts": cart_count,
            "totalAbandonedCartsItems": cart_items,
        }


def _basket(revenue: str, quantity: int, names: str) -> str:
    return f"{revenue} revenue - {quantity} items: {names})"  # Matomo's stray ")"


def _status_icon(status: str) -> str | None:
    if status == "none":
        return None
    name = "ecommerceOrder" if status.startswith("ordered") else "ecommerceAbandonedCart"
    return f"plugins/Morpheus/images/{name}.svg"


def _same_request(action: RawAction) -> bool:
    """Whether a conversion came with another request (URL/download/event goals)."""
    return action.kind == "goal" and action.data["trigger"] is not None


def visit_duration(visible: list[RawAction]) -> int:
    """``visit_total_time``: 0 for a single request, else first to last request plus 1 s."""
    requests = {a.ts for a in visible if not _same_request(a)}
    if len(requests) < 2:
        return 0
    return max(requests) - min(requests) + 1


def _time_spent(visible: list[RawAction], duration: int) -> dict[int, int]:
    """Live ``timeSpent`` per pageview: the time_spent_ref_action of the requests after it up
    to the next pageview; the last pageview gets the rest of the visit when that exceeds 10 s."""
    spent: dict[int, int] = {}
    current: RawAction | None = None
    previous: int | None = None
    for action in visible:
        if _same_request(action):
            continue
        gap = 0 if previous is None else min(max(action.ts - previous, 0), _VISIT_TIMEOUT)
        previous = action.ts
        if action.kind in _CONVERSIONS:
            continue  # its own request: moves the clock, records no time
        if current is not None:
            spent[id(current)] += gap
        if action.kind == "action":
            current = action
            spent[id(action)] = 0
    if current is not None:
        rest = duration - (current.ts - visible[0].ts)
        spent[id(current)] = rest if rest > 10 else 0
    return spent


# --------------------------------------------------------------------------- entry points


def capacity_for(visits_per_day: int) -> int:
    """Visit ids reserved per (site, day): a power of ten above any day's volume."""
    needed = visits_per_day * 2 + 50
    capacity = 100
    while capacity < needed:
        capacity *= 10
    return capacity


def generate_day(
    idsite: int,
    day: dt.date,
    *,
    seed: int,
    day_index: int,
    visits_per_day: int,
    sites: int,
    late_fraction: float = 0.0,
) -> list[RawVisit]:
    """The raw visits of one site-local day, independent of every other day."""
    generator = DayGenerator(
        site_profile(idsite),
        seed,
        day,
        day_index,
        visits_per_day,
        capacity_for(visits_per_day),
        sites,
        late_fraction,
    )
    return generator.visits()


VisitRenderer = Callable[[RawVisit, int], "dict[str, Any] | None"]


def renderer_for(idsite: int, day: dt.date) -> VisitRenderer:
    """``render_visit`` bound to a site-day (shares the day's clock between visits)."""
    profile = site_profile(idsite)
    clock = DayClock.of(day, profile.timezone)

    def render(raw: RawVisit, now: int) -> dict[str, Any] | None:
        return render_visit(raw, profile, clock, now)

    return render


def sort_key(visit: dict[str, Any]) -> tuple[int, int]:
    return visit["lastActionTimestamp"], visit["idVisit"]
