"""Matomo 5 report bodies computed from Live visit objects, the way Matomo archives them.

Input is what ``Live.getLastVisitsDetails`` returns (captured or synthetic). Each report is archived
per site-local day (visits dated by their last action, actions and conversions by their own time),
days are summed into weeks/months/ranges in Matomo's sub-period order (so even the float noise of
blob reports matches), unique visitors are recounted for week/month and dropped for year/range, and
processed metrics are rounded like PHP. ``VisitsSummary.get``, ``Actions.get``, ``Goals.get`` and
``Referrers.getReferrerType`` are exact; see ``INEXACT`` for what the Live data cannot reproduce.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote_plus, unquote_plus, urlsplit

from extract.demo.generator import pretty_duration, zone

log = logging.getLogger(__name__)

Visit = Mapping[str, Any]
Row = dict[str, Any]

# What Live data cannot reproduce (checked against the captured Matomo 5.0.2 reports).
INEXACT = {
    "page reports": "per-timing page-performance columns are absent (Live has only the total "
    "load time; avg_page_load_time is computed from it), per-page goal attribution is omitted, "
    "sum_time_spent cannot see manual goal requests, and unique visitors count the visit's final "
    "visitorId (Matomo keeps the pre-login id on earlier actions).",
    "action-scope custom dimensions": "Matomo also stores the value on non-pageview actions, "
    "which Live shows as null; rows count pageviews only.",
    "events": "names that are URLs are reported URL-decoded by Matomo, as sent by Live here.",
    "languages": "Live's languageCode drops the region (ja-jp shows as ja).",
    "idsubdatatable": "subtable ids are numbered in row order, not Matomo's archive order.",
    "string metrics": "day rows of SQL-aggregated reports return SUM() columns as strings, as "
    "captured; which rows Matomo merged (and so turned into numbers) is not reproduced.",
    "float noise": "exact for the four core reports; other tables may differ in the last bits.",
    "server time": "VisitTime.getVisitInformationPerServerTime maps UTC hours to site hours per "
    "day; on a DST-change day Matomo's own mapping differs by an hour for part of the day.",
}


class ReportError(Exception):
    """Matomo would answer ``{"result": "error", "message": str(self)}``."""


@dataclass(frozen=True)
class Goal:
    idgoal: int
    name: str


@dataclass(frozen=True)
class CustomDimension:
    idcustomdimension: int
    scope: str  # "visit" or "action"
    name: str


@dataclass(frozen=True)
class SiteInfo:
    """The site facts reports depend on."""

    idsite: int
    timezone: str
    ecommerce: bool
    goals: tuple[Goal, ...] = ()
    dimensions: tuple[CustomDimension, ...] = ()
    currency_symbol: str = "$"


# --------------------------------------------------------------------------- numbers


def php_round(value: float, precision: int = 0) -> float:
    """PHP ``round()``: half away from zero, on the shortest decimal repr (PHP pre-rounds)."""
    quantum = Decimal(1).scaleb(-precision)
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))


def quotient(numerator: float, denominator: float, precision: int) -> float:
    """``Piwik::getQuotientSafe``: rounded ratio, 0 when dividing by 0."""
    return php_round(numerator / denominator, precision) if denominator else 0.0


def json_number(value: float) -> int | float:
    """PHP ``json_encode`` writes whole floats without ``.0``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _php_string(value: float) -> str:
    """PHP float-to-string (precision 14), e.g. for ``"37.86%"``."""
    text = f"{value:.14G}"
    return "0" if text in ("-0", "0") else text


def percent(ratio: float) -> str:
    return _php_string(ratio * 100) + "%"


def _money(values: Iterable[Any]) -> float:
    """``ROUND(SUM(revenue), 2)``: MySQL sums exactly, so sum the decimals."""
    total = sum((Decimal(str(v)) for v in values), Decimal(0))
    return float(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _int(value: Any) -> int:
    # Live sends ints on PHP >= 8.1 and strings before; accept both.
    return int(value or 0)


def urlencode(value: str) -> str:
    """PHP ``urlencode`` (segment values are urlencoded; ``~`` is encoded too)."""
    return quote_plus(value, safe="").replace("~", "%7E")


# --------------------------------------------------------------------------- periods

_PERIODS = ("day", "week", "month", "year", "range")
_DATE_ERROR = (
    "Date format must be: YYYY-MM-DD, or 'today' or 'yesterday' or any keyword supported by the "
    "strtotime function (see http://php.net/strtotime for more information): false"
)
_LAST_N = re.compile(r"^(last|previous)(\d+)$")


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "month":
            return self.start.strftime("%Y-%m")
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start.isoformat()},{self.end.isoformat()}"

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(n) for n in range((self.end - self.start).days + 1)]

    def subperiods(self) -> list[Period]:
        """The archives Matomo sums to build this one, in order."""
        if self.kind == "week":
            return [Period("day", d, d) for d in self.days()]
        if self.kind == "year":
            return [_period("month", dt.date(self.start.year, m, 1)) for m in range(1, 13)]
        if self.kind == "month":
            # Period\Month is made of the ISO weeks inside it plus the days at its edges.
            return _range_subperiods(self.start, self.end, months=False)
        if self.kind == "range":
            return _range_subperiods(self.start, self.end)
        return []


def _period(kind: str, day: dt.date) -> Period:
    if kind == "week":
        start = day - dt.timedelta(day.weekday())
        return Period(kind, start, start + dt.timedelta(6))
    if kind == "month":
        start = day.replace(day=1)
        following = (start + dt.timedelta(32)).replace(day=1)
        return Period(kind, start, following - dt.timedelta(1))
    if kind == "year":
        return Period(kind, dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))
    return Period("day", day, day)


def _range_subperiods(start: dt.date, end: dt.date, months: bool = True) -> list[Period]:
    # Greedy, like Period\Range: a whole month or ISO week when it fits, otherwise a day.
    parts: list[Period] = []
    day = start
    while day <= end:
        month, week = _period("month", day), _period("week", day)
        if months and day == month.start and month.end <= end:
            parts.append(month)
        elif day == week.start and week.end <= end:
            parts.append(week)
        else:
            parts.append(Period("day", day, day))
        day = parts[-1].end + dt.timedelta(1)
    return parts


def _parse_day(text: str, today: dt.date) -> dt.date:
    keywords = {"today": today, "now": today, "yesterday": today - dt.timedelta(1)}
    if text in keywords:
        return keywords[text]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ReportError(_DATE_ERROR) from None


def resolve_periods(period: str, date: str, today: dt.date) -> tuple[list[Period], bool]:
    """The periods a ``period``/``date`` pair asks for, and whether the answer is keyed by date."""
    if not date:
        raise ReportError("Please specify a value for 'date'.")
    if not period:
        raise ReportError("Please specify a value for 'period'.")
    if period not in _PERIODS:
        raise ReportError(
            f"The period '{period}' is not supported. Try any of the following instead: "
            "day, week, month, year, range"
        )
    bounds = _date_bounds(date, today, period)
    if period == "range":
        if bounds is None:
            raise ReportError(
                f"The date '{date}' is not a correct date range. It should have the following "
                "format:  'lastN', 'previousN', 'YYYY-MM-DD,YYYY-MM-DD'."
            )
        return [Period("range", *bounds)], False
    if bounds is None:
        return [_period(period, _parse_day(date, today))], False
    periods: list[Period] = []
    day = bounds[0]
    while day <= bounds[1]:
        periods.append(_period(period, day))
        day = periods[-1].end + dt.timedelta(1)
    return periods, True


def _date_bounds(date: str, today: dt.date, period: str) -> tuple[dt.date, dt.date] | None:
    """First and last day of a multi-period date (``A,B``, ``lastN``, ``previousN``)."""
    if "," in date:
        first, _, last = date.partition(",")
        return _parse_day(first, today), _parse_day(last, today)
    match = _LAST_N.match(date)
    if match is None:
        return None
    count = int(match.group(2))
    unit = "day" if period == "range" else period
    last_period = _period(unit, today)
    if match.group(1) == "previous":
        last_period = _period(unit, last_period.start - dt.timedelta(1))
    first_period = last_period
    for _ in range(count - 1):
        first_period = _period(unit, first_period.start - dt.timedelta(1))
    return first_period.start, last_period.end


# --------------------------------------------------------------------------- day index


@dataclass
class DayData:
    """What a day archive reads: visits by last action, Live action rows by their own time."""

    date: dt.date
    visits: list[Visit] = field(default_factory=list)
    actions: list[tuple[Visit, Mapping[str, Any]]] = field(default_factory=list)

    def conversions(self) -> list[tuple[Visit, Mapping[str, Any]]]:
        return [(v, a) for v, a in self.actions if a.get("type") in _CONVERSION_TYPES]


_CONVERSION_TYPES = {"goal": None, "ecommerceOrder": 0, "ecommerceAbandonedCart": -1}


def _idgoal(action: Mapping[str, Any]) -> int:
    fixed = _CONVERSION_TYPES[action["type"]]
    return _int(action.get("goalId")) if fixed is None else fixed


def index_days(visits: Iterable[Visit], timezone: str) -> dict[dt.date, DayData]:
    tz = zone(timezone)
    days: dict[dt.date, DayData] = {}
    for visit in visits:
        last = dt.datetime.fromtimestamp(_int(visit["lastActionTimestamp"]), tz).date()
        days.setdefault(last, DayData(last)).visits.append(visit)
        for action in visit.get("actionDetails") or ():
            # actionDetails[].timestamp is site-local wall-clock time encoded as UTC.
            local = dt.datetime.fromtimestamp(_int(action["timestamp"]), dt.UTC).date()
            days.setdefault(local, DayData(local)).actions.append((visit, action))
    return days


# --------------------------------------------------------------------------- shared metrics

_VISIT_METRICS = (
    "nb_uniq_visitors",
    "nb_visits",
    "nb_actions",
    "nb_users",
    "max_actions",
    "sum_visit_length",
    "bounce_count",
    "nb_visits_converted",
)


def visit_metrics(visits: Sequence[Visit]) -> dict[str, float]:
    """``LogAggregator::getVisitsMetricFields`` over Live visits."""
    actions = [_int(v.get("actions")) for v in visits]
    return {
        "nb_uniq_visitors": float(len({v.get("visitorId") for v in visits})),
        "nb_visits": float(len(visits)),
        "nb_actions": float(sum(actions)),
        "nb_users": float(len({v["userId"] for v in visits if v.get("userId")})),
        "max_actions": float(max(actions, default=0)),
        "sum_visit_length": float(sum(_int(v.get("visitDuration")) for v in visits)),
        "bounce_count": float(sum(1 for n in actions if n <= 1)),
        "nb_visits_converted": float(sum(1 for v in visits if _int(v.get("visitConverted")) == 1)),
    }


def _is_new(visit: Visit) -> bool:
    return visit.get("visitorType") == "new"


_GOAL_KEY = {0: "ecommerceOrder", -1: "ecommerceAbandonedCart"}
_ORDER_PARTS = (
    ("revenue_subtotal", "revenueSubTotal"),
    ("revenue_tax", "revenueTax"),
    ("revenue_shipping", "revenueShipping"),
    ("revenue_discount", "revenueDiscount"),
)


def goal_metrics(conversions: Sequence[tuple[Visit, Mapping[str, Any]]]) -> dict[int, Row]:
    """Per idgoal (-1 cart, 0 order, >0 goals): ``queryConversionsByDimension`` metrics."""
    grouped: dict[int, list[tuple[Visit, Mapping[str, Any]]]] = defaultdict(list)
    for visit, action in conversions:
        grouped[_idgoal(action)].append((visit, action))
    blocks: dict[int, Row] = {}
    for idgoal in sorted(grouped):
        rows = grouped[idgoal]
        block: Row = {
            "nb_conversions": float(len(rows)),
            "nb_visits_converted": float(len({v["idVisit"] for v, _ in rows})),
            "revenue": _money(a.get("revenue") or 0 for _, a in rows),
        }
        if idgoal == 0:
            for name, live_key in _ORDER_PARTS:
                block[name] = _money(a.get(live_key) or 0 for _, a in rows)
        if idgoal <= 0:
            block["items"] = float(sum(_int(a.get("items")) for _, a in rows))
        blocks[idgoal] = block
    return blocks


def _goals_column(blocks: Mapping[int, Row]) -> Row:
    """The nested ``goals`` column of table rows, keyed ``idgoal=…``."""
    return {f"idgoal={_GOAL_KEY.get(g, g)}": dict(b) for g, b in sorted(blocks.items())}


def _conversion_totals(goals: Mapping[str, Row]) -> tuple[float, float]:
    # Abandoned carts are not conversions; PHP adds the rounded goal revenues in idgoal order.
    conversions, revenue = 0.0, 0.0
    for key, block in goals.items():
        if key != "idgoal=ecommerceAbandonedCart":
            conversions += block["nb_conversions"]
            revenue += block["revenue"]
    return conversions, revenue


def _merge_into(target: Row, source: Mapping[str, Any]) -> None:
    """``DataTable::addDataTable`` row arithmetic: sums, max_/min_ columns, nested dicts."""
    for key, value in source.items():
        if key == "_meta":
            target.setdefault(key, value)
        elif key not in target:
            target[key] = _copy(value)
        elif isinstance(value, dict):
            _merge_into(target[key], value)
        elif isinstance(value, str) or value is None or target[key] is None:
            target[key] = target[key] if target[key] is not None else value
        elif key.startswith("max_"):
            target[key] = max(target[key], value)
        elif key.startswith("min_"):
            # Matomo's "min" aggregation treats 0 as "no value yet".
            target[key] = min(target[key], value) if target[key] and value else target[key] or value
        else:
            target[key] += value


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


# --------------------------------------------------------------------------- report engine


@dataclass
class Context:
    """One report request: the site, its parameters and the visits indexed by local day."""

    site: SiteInfo
    params: Mapping[str, str]
    index: dict[dt.date, DayData]

    def day(self, day: dt.date) -> DayData:
        return self.index.get(day) or DayData(day)

    def period_visits(self, period: Period) -> list[Visit]:
        return [v for d in period.days() for v in self.day(d).visits]

    def has_data(self, period: Period) -> bool:
        return any(self.day(d).visits or self.day(d).actions for d in period.days())


class Report:
    """A Matomo report: a day archive, how archives add up, and the API rendering."""

    # Single-row reports answer a zero object for an empty period (``[]`` inside a date map).
    single_row = False

    def day(self, data: DayData, ctx: Context) -> Any:
        raise NotImplementedError

    def merge(self, parts: list[Any], ctx: Context) -> Any:
        raise NotImplementedError

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        raise NotImplementedError

    def archive(self, period: Period, ctx: Context) -> Any:
        if period.kind == "day":
            return self.day(ctx.day(period.start), ctx)
        return self.merge([self.archive(sub, ctx) for sub in period.subperiods()], ctx)


class NumericReport(Report):
    """Numeric archive records (``*.get`` reports): summed per column, read back rounded."""

    single_row = True

    def merge(self, parts: list[Any], ctx: Context) -> Any:
        total: Row = {}
        for part in parts:
            _merge_into(total, part)
        return _read_numeric(total)

    def archive(self, period: Period, ctx: Context) -> Any:
        return _read_numeric(super().archive(period, ctx))


def _read_numeric(record: Row) -> Row:
    # core/Archive.php: numeric records come back as float, rounded to 2 decimals.
    return {k: php_round(v, 2) if isinstance(v, float) else v for k, v in record.items()}


def _recount_uniques(archive: Row, period: Period, ctx: Context, suffix: str = "") -> Row:
    """Week/month recount uniques over the whole period; year/range drop them."""
    out = dict(archive)
    if period.kind in ("year", "range"):
        out.pop("nb_uniq_visitors" + suffix, None)
        out.pop("nb_users" + suffix, None)
    elif period.kind != "day":
        visits = ctx.period_visits(period)
        if suffix:
            visits = [v for v in visits if _is_new(v) == (suffix == "_new")]
        metrics = visit_metrics(visits)
        out["nb_uniq_visitors" + suffix] = min(metrics["nb_uniq_visitors"], metrics["nb_visits"])
        out["nb_users" + suffix] = metrics["nb_users"]
    return out


def _visit_processed(row: Row, suffix: str = "") -> Row:
    visits = row.get("nb_visits" + suffix, 0.0)
    return {
        "bounce_rate" + suffix: quotient(row.get("bounce_count" + suffix, 0.0), visits, 2),
        "nb_actions_per_visit" + suffix: quotient(row.get("nb_actions" + suffix, 0.0), visits, 1),
        "avg_time_on_site" + suffix: quotient(row.get("sum_visit_length" + suffix, 0.0), visits, 0),
    }


class VisitsSummary(NumericReport):
    order = (
        "nb_uniq_visitors",
        "nb_users",
        "nb_visits",
        "nb_actions",
        "nb_visits_converted",
        "bounce_count",
        "sum_visit_length",
        "max_actions",
    )

    def day(self, data: DayData, ctx: Context) -> Any:
        return visit_metrics(data.visits)

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        row = _recount_uniques(archive, period, ctx)
        out = {k: row[k] for k in self.order if k in row}
        return {**out, **_visit_processed(row)}


class VisitFrequency(NumericReport):
    order = (
        "nb_uniq_visitors",
        "nb_users",
        "nb_visits",
        "nb_actions",
        "nb_visits_converted",
        "bounce_count",
        "sum_visit_length",
        "max_actions",
    )

    def day(self, data: DayData, ctx: Context) -> Any:
        record: Row = {}
        for suffix, new in (("_new", True), ("_returning", False)):
            metrics = visit_metrics([v for v in data.visits if _is_new(v) == new])
            record.update({k + suffix: v for k, v in metrics.items()})
        return record

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        out: Row = {}
        for suffix in ("_new", "_returning"):
            row = _recount_uniques(archive, period, ctx, suffix)
            out.update({k + suffix: row[k + suffix] for k in self.order if k + suffix in row})
            out.update(_visit_processed(row, suffix))
        return out


class ActionsSummary(NumericReport):
    """``Actions.get``: pageviews/downloads/outlinks (+ uniques per visit), searches, keywords."""

    kinds = (("pageviews", "action"), ("downloads", "download"), ("outlinks", "outlink"))

    def day(self, data: DayData, ctx: Context) -> Any:
        record: Row = {}
        for name, live_type in self.kinds:
            rows = [(v, a) for v, a in data.actions if a.get("type") == live_type]
            record[f"nb_{name}"] = float(len(rows))
            # Matomo's "unique" = distinct (visit, idaction_url); 0 stands for "URL not defined".
            uniq = {(v["idVisit"], a.get("pageIdAction") or 0) for v, a in rows}
            record[f"nb_uniq_{name}"] = float(len(uniq))
        keywords = {
            a.get("siteSearchKeyword") for _, a in data.actions if a.get("type") == "search"
        }
        record["nb_searches"] = float(sum(1 for _, a in data.actions if a.get("type") == "search"))
        record["keywords"] = frozenset(keywords)
        return record

    def merge(self, parts: list[Any], ctx: Context) -> Any:
        keywords = frozenset().union(*(p["keywords"] for p in parts))
        total = super().merge([{k: v for k, v in p.items() if k != "keywords"} for p in parts], ctx)
        return {**total, "keywords": keywords}

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        out = {k: archive.get(k, 0.0) for k in _ACTIONS_GET_KEYS if k != "nb_keywords"}
        # Row count of the (truncated: 500 + "Others") keyword table of this period.
        count = len(archive["keywords"])
        out["nb_keywords"] = float(count if count <= _MAX_SEARCH_ROWS else _MAX_SEARCH_ROWS + 1)
        return out


_ACTIONS_GET_KEYS = (
    "nb_pageviews",
    "nb_uniq_pageviews",
    "nb_downloads",
    "nb_uniq_downloads",
    "nb_outlinks",
    "nb_uniq_outlinks",
    "nb_searches",
    "nb_keywords",
)
_MAX_SEARCH_ROWS = 500


class GoalsSummary(NumericReport):
    """``Goals.get`` for all goals or one ``idGoal``, plus the new/returning visit variants."""

    segments = (("", None), ("_new_visit", True), ("_returning_visit", False))

    def day(self, data: DayData, ctx: Context) -> Any:
        record: Row = {}
        conversions = data.conversions()
        for suffix, new in self.segments:
            visits = [v for v in data.visits if new is None or _is_new(v) == new]
            convs = [(v, a) for v, a in conversions if new is None or _is_new(v) == new]
            record["nb_visits" + suffix] = float(len(visits))
            record["visits_converted" + suffix] = float(
                sum(1 for v in visits if _int(v.get("visitConverted")) == 1)
            )
            blocks = goal_metrics(convs)
            for idgoal, block in blocks.items():
                record.update({f"{idgoal}:{k}{suffix}": v for k, v in block.items()})
            conv_total, revenue_total = _conversion_totals(_goals_column(blocks))
            record["all:nb_conversions" + suffix] = conv_total
            record["all:revenue" + suffix] = revenue_total
        return record

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        idgoal = _parse_idgoal(ctx.params.get("idGoal", ""))
        out: Row = {}
        for suffix, _ in self.segments:
            out.update(self._block(archive, idgoal, suffix))
        return out

    def _block(self, archive: Row, idgoal: int | None, suffix: str) -> Row:
        def value(key: str) -> float:
            return float(archive.get(key + suffix, 0.0))

        prefix = "all" if idgoal is None else str(idgoal)
        converted = (
            value("visits_converted") if idgoal is None else value(f"{prefix}:nb_visits_converted")
        )
        block: Row = {
            "nb_conversions": value(f"{prefix}:nb_conversions"),
            "nb_visits_converted": converted,
            "revenue": value(f"{prefix}:revenue"),
        }
        if idgoal == 0:
            for name, _ in _ORDER_PARTS:
                block[name] = value(f"0:{name}")
        if idgoal is not None and idgoal <= 0:
            block["items"] = value(f"{idgoal}:items")
            block["avg_order_revenue"] = quotient(block["revenue"], block["nb_conversions"], 2)
        block["conversion_rate"] = quotient(converted, value("nb_visits"), 4)
        return {k + suffix: v for k, v in block.items()}


def _parse_idgoal(text: str) -> int | None:
    if text in ("", "0"):
        return None
    if text == "ecommerceOrder":
        return 0
    if text == "ecommerceAbandonedCart":
        return -1
    try:
        return int(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- tables


class TableReport(Report):
    """A blob report: rows keyed by label, summed across sub-periods."""

    strings: frozenset[str] = frozenset()  # day columns Matomo returns as SQL strings
    sort_column = "nb_visits"
    numbered = False  # rows carry an ``idsubdatatable`` (ids given in row order)
    # datatable_archiving_maximum_rows_*: day and period tables are truncated with "Others".
    max_rows = 0

    def merge(self, parts: list[Any], ctx: Context) -> Any:
        total: dict[str, Row] = {}
        for part in parts:
            for key, row in part.items():
                if key in total:
                    _merge_into(total[key], row)
                else:
                    total[key] = _copy(row)
        return total

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        finished = (self.finish(_copy(row), period, ctx) for row in archive.values())
        rows = [r for r in finished if r is not None]
        rows.sort(key=self.sort_key)
        if period.kind == "day":
            for row in rows:
                if not row.get("nb_visits"):
                    continue  # rows made up for empty labels were never SQL results
                for key in self.strings & row.keys():
                    row[key] = str(json_number(row[key]))
        if self.numbered:
            for number, row in enumerate(rows, start=1):
                row["idsubdatatable"] = number
        return rows

    def sort_key(self, row: Row) -> tuple[Any, ...]:
        # Ties keep PHP's natural, case-insensitive label order (strnatcasecmp).
        return (-float(row.get(self.sort_column) or 0), *natural_key(row["label"]))

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        raise NotImplementedError


_UNIQUE_COLUMNS = (
    "nb_uniq_visitors",
    "nb_users",
    "entry_nb_uniq_visitors",
    "exit_nb_uniq_visitors",
)


def natural_key(label: Any) -> tuple[tuple[int, int, str], ...]:
    """``strnatcasecmp`` order: digit runs compare as numbers, text case-insensitively."""
    return tuple(
        (0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk.casefold())
        for chunk in re.findall(r"\d+|\D+", str(label))
    )


def _period_uniques(row: Row, period: Period) -> Row:
    """Blob tables summed over days rename uniques to ``sum_daily_*``."""
    if period.kind == "day":
        return row
    out: Row = {}
    for key, value in row.items():
        out[f"sum_daily_{key}" if key in _UNIQUE_COLUMNS else key] = value
    return out


def _ordered(row: Row, order: Sequence[str], period: Period) -> Row:
    """Columns in Matomo's order; period tables carry ``sum_daily_*`` after the metrics."""
    names = [n for n in order if not (period.kind != "day" and n in _UNIQUE_COLUMNS)]
    out = {n: row.pop(n) for n in names if n in row}
    daily = {k: row.pop(k) for k in list(row) if k.startswith("sum_daily_")}
    meta = row.pop("_meta", {})
    out.update(daily)
    out.update(row)
    out.update(meta)
    return out


# ---- visit-dimension tables (Referrers, UserCountry, DevicesDetection, …)

Dimension = Callable[[Visit, SiteInfo], "tuple[str, str, Row] | None"]
ConversionDimension = Callable[[Visit, Mapping[str, Any], SiteInfo], "tuple[str, str, Row] | None"]


class VisitTable(TableReport):
    """One row per value of a visit dimension: visit metrics plus the visits' conversions."""

    metric_order = ("label", *_VISIT_METRICS, "goals", "nb_conversions", "revenue")

    def __init__(
        self,
        dimension: Dimension,
        *,
        goals: bool = True,
        strings: Iterable[str] = (),
        by_label: bool = False,
        fixed_rows: Callable[[SiteInfo, Period], Iterable[tuple[str, Row]]] | None = None,
        processed: bool = False,
        sql_groups: SqlGroups | None = None,
        conversion_dimension: ConversionDimension | None = None,
        blank_label: str = "",
        numbered: bool = False,
        day_labels: Callable[[dict[str, Row], dt.date, SiteInfo], dict[str, Row]] | None = None,
        relabel: Callable[[dict[str, Row], Period, SiteInfo], dict[str, Row]] | None = None,
    ) -> None:
        self.dimension = dimension
        self.goals = goals
        self.strings = frozenset(strings)
        self.by_label = by_label
        self.fixed_rows = fixed_rows
        self.processed = processed
        self.sql_groups = sql_groups
        self.conversion_dimension = conversion_dimension
        # A label stored empty in the archive and translated only after sorting.
        self.blank_label = blank_label
        self.numbered = numbered  # referrer detail tables: keywords/URLs per row
        self.day_labels = day_labels
        self.relabel = relabel

    def day(self, data: DayData, ctx: Context) -> Any:
        # Rows are sums of the archiver's SQL groups (so uniques are per group, then added).
        groups: dict[tuple[str, Any], list[Visit]] = defaultdict(list)
        rows: dict[str, Row] = {}
        for visit in data.visits:
            found = self.dimension(visit, ctx.site)
            if found is None:
                continue
            key, label, meta = found
            if key not in rows:
                rows[key] = {"label": label, "_meta": meta}
            sub = self.sql_groups.visit(visit) if self.sql_groups else None
            groups[(key, sub)].append(visit)
        for (key, _), visits in groups.items():
            _merge_into(rows[key], visit_metrics(visits))
        if self.goals:
            self._add_goals(rows, data, ctx)
        if self.day_labels is not None:
            rows = self.day_labels(rows, data.date, ctx.site)
        return rows

    def _add_goals(self, rows: dict[str, Row], data: DayData, ctx: Context) -> None:
        groups: dict[tuple[Any, ...], list[tuple[Visit, Mapping[str, Any]]]] = defaultdict(list)
        for visit, action in data.conversions():
            if self.conversion_dimension is not None:
                found = self.conversion_dimension(visit, action, ctx.site)
            else:
                found = self.dimension(visit, ctx.site)
            if found is None:
                continue
            rows.setdefault(found[0], {"label": found[1], "_meta": found[2]})
            sub = self.sql_groups.conversion(visit, action) if self.sql_groups else ()
            groups[(_idgoal(action), *sub, found[0])].append((visit, action))
        # MySQL returns GROUP BY results sorted; the float sums follow that order.
        for group in sorted(groups, key=lambda g: g[:-1]):
            row = rows[group[-1]]
            _merge_into(row.setdefault("goals", {}), _goals_column(goal_metrics(groups[group])))
        # EnrichRecordWithGoalMetricSums runs on the day record; periods sum its columns.
        for row in rows.values():
            if "goals" in row:
                row["nb_conversions"], row["revenue"] = _conversion_totals(row["goals"])

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        archive = {k: _copy(r) for k, r in archive.items()}
        if self.relabel is not None:
            archive = self.relabel(archive, period, ctx.site)
        if self.fixed_rows is not None:
            for key, row in self.fixed_rows(ctx.site, period):
                if key in archive:  # a row made only of conversions just gains nb_visits
                    archive[key].setdefault("nb_visits", 0.0)
                else:
                    archive[key] = row
        return super().render(archive, period, ctx)

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        if self.processed:
            row.update(_visit_processed(row))
        return _ordered(_period_uniques(row, period), self.metric_order, period)

    def sort_key(self, row: Row) -> tuple[Any, ...]:
        if self.by_label:
            return (0.0, *natural_key(row["label"]))
        if self.blank_label and row["label"] == self.blank_label:
            return (-float(row.get(self.sort_column) or 0),)
        return super().sort_key(row)


# ---- dimensions of visits


@dataclass(frozen=True)
class SqlGroups:
    """The archiver's GROUP BY columns beyond the report label (visits, then conversions)."""

    visit: Callable[[Visit], Any]
    conversion: Callable[[Visit, Mapping[str, Any]], tuple[Any, ...]]


def _collate(value: Any) -> tuple[int, str]:
    # utf8mb4_general_ci: NULL first, then case-insensitive.
    return (0, "") if value is None else (1, str(value).casefold())


def _referrer_visit_group(visit: Visit) -> Any:
    keyword = visit.get("referrerKeyword")
    return (
        _referrer_kind(visit),
        visit.get("referrerName") or "",
        "" if keyword == _NO_KEYWORD else keyword or "",
        visit.get("referrerUrl") or "",
    )


def _referrer_conversion_group(visit: Visit, action: Mapping[str, Any]) -> tuple[Any, ...]:
    # Goal rows carry the conversion's attributed referrer; orders and carts use the visit's.
    source = action if action.get("type") == "goal" else visit
    keyword = source.get("referrerKeyword")
    return (
        _REFERRER_TYPES[_referrer_kind(visit)][0],
        _collate(source.get("referrerName") or None),
        _collate(None if keyword in (None, _NO_KEYWORD) else keyword),
    )


_REFERRER_GROUPS = SqlGroups(_referrer_visit_group, _referrer_conversion_group)

_REFERRER_TYPES = {
    "direct": (1, "Direct Entry"),
    "search": (2, "Search Engines"),
    "website": (3, "Websites"),
    "campaign": (6, "Campaigns"),
    "social": (7, "Social Networks"),
}
_NO_KEYWORD = "Keyword not defined"


def _referrer_kind(visit: Visit) -> str:
    kind = visit.get("referrerType") or "direct"
    return kind if kind in _REFERRER_TYPES else "direct"


def _referrer_type(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    kind = _referrer_kind(visit)
    type_id, label = _REFERRER_TYPES[kind]
    meta: Row = {"segment": f"referrerType=={kind}", "referrer_type": type_id}
    if type_id != 1:
        meta["idsubdatatable"] = type_id
    return label, label, meta


def _keyword(visit: Visit) -> tuple[str, str]:
    """Label and segment value of a search referrer's keyword."""
    keyword = visit.get("referrerKeyword") or _NO_KEYWORD
    return keyword, "" if keyword == _NO_KEYWORD else urlencode(keyword)


def _referrer_of(kind: str) -> Dimension:
    def dimension(visit: Visit, site: SiteInfo) -> tuple[str, str, Row] | None:
        if _referrer_kind(visit) != kind:
            return None
        name = str(visit.get("referrerName") or "")
        segment = f"referrerType=={kind};referrerName=={urlencode(name)}"
        meta: Row = {"segment": segment}
        if kind == "website":
            meta = {"segment": f"referrerName=={urlencode(name)}"}
        elif kind == "search":
            meta["url"] = visit.get("referrerSearchEngineUrl")
            meta["logo"] = visit.get("referrerSearchEngineIcon")
        elif kind == "social":
            meta = {
                "url": visit.get("referrerSocialNetworkUrl"),
                "logo": visit.get("referrerSocialNetworkIcon"),
                "segment": segment,
            }
        return name, name, meta

    return dimension


def _search_keyword(visit: Visit, site: SiteInfo) -> tuple[str, str, Row] | None:
    if _referrer_kind(visit) != "search":
        return None
    label, value = _keyword(visit)
    return label, label, {"segment": f"referrerType==search;referrerKeyword=={value}"}


def _any_referrer(visit: Visit, site: SiteInfo) -> tuple[str, str, Row] | None:
    """``Referrers.getAll``: keywords for search engines, names for everything else."""
    kind = _referrer_kind(visit)
    if kind == "direct":
        return None
    if kind == "search":
        label, value = _keyword(visit)
        meta: Row = {"segment": f"referrerType==search;referrerKeyword=={value}"}
    else:
        found = _referrer_of(kind)(visit, site)
        assert found is not None
        label, meta = found[1], {"segment": found[2]["segment"]}
    meta["referer_type"] = _REFERRER_TYPES[kind][0]
    if kind == "social":
        meta["url"] = visit.get("referrerSocialNetworkUrl")
        meta["logo"] = visit.get("referrerSocialNetworkIcon")
    return f"{kind}:{label}", label, meta


def _country(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    code = str(visit.get("countryCode") or "xx")
    meta: Row = {
        "code": code,
        "logo": visit.get("countryFlag"),
        "segment": f"countryCode=={code}",
        "logoHeight": 16,
    }
    return code, str(visit.get("country") or "Unknown"), meta


def _city(visit: Visit, site: SiteInfo) -> tuple[str, str, Row] | None:
    city = visit.get("city")
    if not city:
        return None
    code, region = str(visit.get("countryCode") or "xx"), str(visit.get("regionCode") or "")
    meta: Row = {
        "segment": f"city=={urlencode(city)};regionCode=={urlencode(region)};countryCode=={code}",
        "city_name": city,
        "region": region,
        "country": code,
        "country_name": visit.get("country"),
        "region_name": visit.get("region"),
        "logo": visit.get("countryFlag"),
    }
    label = str(visit.get("location") or city)
    return label, label, meta


DEVICE_TYPES = (
    "Desktop",
    "Smartphone",
    "Tablet",
    "Camera",
    "Car browser",
    "Console",
    "Feature phone",
    "Peripheral",
    "Phablet",
    "Portable media player",
    "Smart display",
    "Smart speaker",
    "Tv",
    "Wearable",
)


def device_icon(device_type: str) -> str:
    return f"plugins/Morpheus/icons/dist/devices/{device_type.lower().replace(' ', '_')}.png"


def _device_type(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    label = str(visit.get("deviceType") or "Unknown")
    meta: Row = {"segment": f"deviceType=={urlencode(label.lower())}", "logo": device_icon(label)}
    return label, label, meta


def _all_device_types(site: SiteInfo, period: Period) -> Iterable[tuple[str, Row]]:
    # DevicesDetection.getType always lists every device type, unused ones with 0 visits.
    for label in DEVICE_TYPES:
        meta: Row = {
            "segment": f"deviceType=={urlencode(label.lower())}",
            "logo": device_icon(label),
        }
        yield label, {"label": label, "nb_visits": 0.0, "_meta": meta}


def _browser(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    code = str(visit.get("browserCode") or "UNK")
    meta: Row = {"logo": visit.get("browserIcon"), "segment": f"browserCode=={code}"}
    return code, str(visit.get("browserName") or "Unknown"), meta


def _os_version(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    code, version = (
        str(visit.get("operatingSystemCode") or "UNK"),
        visit.get("operatingSystemVersion"),
    )
    segment = f"operatingSystemCode=={code};operatingSystemVersion=={urlencode(version or '')}"
    meta: Row = {
        "segment": segment,
        "logo": f"plugins/Morpheus/icons/dist/os/{code}.png",
    }
    return f"{code};{version}", str(visit.get("operatingSystem") or "Unknown"), meta


def _field(name: str, segment: str) -> Dimension:
    def dimension(visit: Visit, site: SiteInfo) -> tuple[str, str, Row] | None:
        value = visit.get(name)
        if value in (None, ""):
            return None
        text = str(value)
        return text, text, {"segment": f"{segment}=={urlencode(text)}"}

    return dimension


def _language(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    code = str(visit.get("languageCode") or "xx").split("-")[0]
    name = str(visit.get("language") or "Unknown").split(" - ")[0]
    return code, name, {"segment": f"languageCode=={code},languageCode=@{code}-"}


def _language_code(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    code = str(visit.get("languageCode") or "xx")
    label = f"{visit.get('language') or 'Unknown'} ({code})"
    return code, label, {"segment": f"languageCode=={code}"}


def _local_hour(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    return _hour_row(_int(visit.get("visitLocalHour")), "visitLocalHour")


def _hour_row(hour: int, segment: str) -> tuple[str, str, Row]:
    return f"{hour:02d}", f"{hour:02d}", {"segment": f"{segment}=={hour}"}


def _server_hour(visit: Visit, site: SiteInfo) -> tuple[str, str, Row]:
    # Archived by the UTC hour of the first action; labels move to site time when rendered.
    return _hour_row(_int(visit["firstActionTimestamp"]) // 3600 % 24, "visitStartServerHour")


def _conversion_hour(
    visit: Visit, action: Mapping[str, Any], site: SiteInfo
) -> tuple[str, str, Row]:
    # Conversions by the UTC hour of their own time (Live gives it site-local: undo the offset).
    details = visit.get("actionDetails") or ()
    offset = _int(details[0]["timestamp"]) - _int(visit["firstActionTimestamp"]) if details else 0
    return _hour_row((_int(action["timestamp"]) - offset) // 3600 % 24, "visitStartServerHour")


def _site_time_day(archive: dict[str, Row], day: dt.date, site: SiteInfo) -> dict[str, Row]:
    """A day's server-time rows move from UTC hours to the site's hours when archived.

    Each site hour takes the row of the UTC hour it starts at, so on a DST change the
    repeated UTC hour is dropped (as Matomo does)."""
    relabelled: dict[str, Row] = {}
    for hour, utc_hour in _site_hours(site, day):
        row = archive.get(f"{utc_hour:02d}")
        if row is not None:
            relabelled[f"{hour:02d}"] = {**row, "label": f"{hour:02d}"}
    return relabelled


def _site_time_rows(archive: dict[str, Row], period: Period, site: SiteInfo) -> dict[str, Row]:
    """All 24 site hours, segments on the UTC hour each starts at on the period's last day."""
    rows: dict[str, Row] = {}
    for hour, utc_hour in _site_hours(site, period.end):
        label = f"{hour:02d}"
        row = archive.get(label) or {"label": label, **dict.fromkeys(_VISIT_METRICS, 0.0)}
        row.setdefault("nb_visits", 0.0)  # a row made only of conversions
        row["_meta"] = _hour_row(utc_hour, "visitStartServerHour")[2]
        rows[label] = row
    return rows


def _site_hours(site: SiteInfo, day: dt.date) -> Iterable[tuple[int, int]]:
    """(site hour, UTC hour it starts at) for the 24 hours of a site-local day."""
    tz = zone(site.timezone)
    for hour in range(24):
        local = dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz)
        yield hour, local.astimezone(dt.UTC).hour


def _local_hours(site: SiteInfo, period: Period) -> Iterable[tuple[str, Row]]:
    # VisitTime reports always have 24 rows; empty hours are zero rows.
    for hour in range(24):
        key, label, meta = _hour_row(hour, "visitLocalHour")
        yield key, {"label": label, **dict.fromkeys(_VISIT_METRICS, 0.0), "_meta": meta}


def _user(visit: Visit, site: SiteInfo) -> tuple[str, str, Row] | None:
    user = visit.get("userId")
    if not user:
        return None
    return (
        user,
        user,
        {"idvisitor": visit.get("visitorId"), "segment": f"userId=={urlencode(user)}"},
    )


def _visit_dimension(idcustomdimension: int) -> Dimension:
    key = f"dimension{idcustomdimension}"
    return _field(key, key)


_SQL_SUMS = ("nb_actions", "sum_visit_length", "bounce_count", "nb_visits_converted")
_SQL_ALL = ("nb_uniq_visitors", "nb_visits", "nb_users", *_SQL_SUMS)


# ---- action tables (pages, downloads, outlinks, site search, events, contents, dimensions)

_VISIT_TIMEOUT = 1800
_INTERACTIONS = ("action", "search")


@dataclass(frozen=True)
class Hit:
    """One ``log_link_visit_action`` row as the Actions archiver sees it."""

    visit: Visit
    action: Mapping[str, Any]
    ref: Mapping[str, Any] | None  # the visit's last pageview or search before this row
    spent: int  # time_spent_ref_action, credited to ``ref``


def _hits(visit: Visit) -> list[Hit]:
    """Rows of a visit with the tracker's time_spent_ref_action reconstructed from Live."""
    hits: list[Hit] = []
    last_time: int | None = None
    ref: Mapping[str, Any] | None = None
    for action in visit.get("actionDetails") or ():
        when = _int(action["timestamp"])
        if action.get("type") in _CONVERSION_TYPES:
            # Manual goals, orders and carts are requests of their own; they move the clock.
            if action.get("idpageview") is None:
                last_time = when
            continue
        spent = 0 if last_time is None else min(max(when - last_time, 0), _VISIT_TIMEOUT)
        hits.append(Hit(visit, action, ref, spent))
        last_time = when
        if action.get("type") in _INTERACTIONS:
            ref = action
    return hits


def _day_hits(data: DayData) -> list[Hit]:
    """Hits dated in this day (each row by its own time)."""
    wanted = {id(a) for _, a in data.actions}
    seen: dict[int, Visit] = {}
    for visit, _ in data.actions:
        seen.setdefault(id(visit), visit)
    return [h for v in seen.values() for h in _hits(v) if id(h.action) in wanted]


def _interactions(visit: Visit) -> list[Mapping[str, Any]]:
    return [a for a in visit.get("actionDetails") or () if a.get("type") in _INTERACTIONS]


def url_label(url: str) -> str:
    """Page URL label: path and query without scheme and host (``/`` for the root)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _double_encoded(value: str) -> str:
    return urlencode(urlencode(value))


def _html_escape(text: str) -> str:
    # Segment values of titles are built from the HTML-escaped stored names.
    return (
        text.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("'", "&#039;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


class _Rows:
    """Rows under construction: counters plus distinct-value sets, turned into counts."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.sets: dict[str, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))

    def row(self, key: str, label: str, meta: Row | None = None) -> Row:
        if key not in self.rows:
            self.rows[key] = {"label": label, "_meta": meta or {}}
        return self.rows[key]

    def add(self, key: str, column: str, amount: float = 1.0) -> None:
        row = self.rows[key]
        row[column] = row.get(column, 0.0) + amount

    def distinct(self, key: str, column: str, value: Any) -> None:
        self.sets[key][column].add(value)

    def done(self) -> dict[str, Row]:
        for key, columns in self.sets.items():
            for column, values in columns.items():
                self.rows[key][column] = float(len(values))
        return self.rows


_MAX_SUBTABLE_ROWS = 100


class PageTable(TableReport):
    """``Actions.getPageUrls``/``getPageTitles`` (flat) and the entry/exit page views of them."""

    order = (
        "label",
        "nb_visits",
        "nb_uniq_visitors",
        "nb_hits",
        "sum_time_spent",
        "nb_hits_following_search",
        "entry_nb_uniq_visitors",
        "entry_nb_visits",
        "entry_nb_actions",
        "entry_sum_visit_length",
        "entry_bounce_count",
        "exit_nb_uniq_visitors",
        "exit_nb_visits",
    )
    strings = frozenset(
        {
            "nb_hits_following_search",
            "entry_nb_visits",
            "entry_nb_actions",
            "entry_sum_visit_length",
            "entry_bounce_count",
            "exit_nb_visits",
        }
    )

    def __init__(self, by_title: bool, view: str = "") -> None:
        self.by_title = by_title
        self.view = view  # "", "entry" or "exit"

    def key(self, action: Mapping[str, Any]) -> tuple[str, Row] | None:
        if self.by_title:
            title = action.get("pageTitle")
            if not title:
                return None
            return title, {"segment": "pageTitle==" + _double_encoded(_html_escape(title))}
        url = str(action.get("url") or "")
        return url_label(url), {"url": url, "segment_url": url}

    def day(self, data: DayData, ctx: Context) -> Any:
        rows = _Rows()
        for hit in _day_hits(data):
            ref = self.key(hit.ref) if hit.ref and hit.ref.get("type") == "action" else None
            if ref is not None and hit.spent > 0 and hit.action.get("type") != "event":
                rows.row(ref[0], ref[0], ref[1])
                rows.add(ref[0], "sum_time_spent", hit.spent)
            found = self.key(hit.action) if hit.action.get("type") == "action" else None
            if found is None:
                continue
            key = found[0]
            rows.row(key, key, found[1])
            rows.add(key, "nb_hits")
            rows.distinct(key, "nb_visits", hit.visit["idVisit"])
            rows.distinct(key, "nb_uniq_visitors", hit.visit.get("visitorId"))
            if hit.ref is not None and hit.ref.get("type") == "search":
                rows.add(key, "nb_hits_following_search")
            if hit.action.get("pageLoadTimeMilliseconds") is not None:
                rows.add(key, "load_hits")
                rows.add(key, "load_ms", _int(hit.action["pageLoadTimeMilliseconds"]))
        for visit in data.visits:
            interactions = _interactions(visit)
            if not interactions:
                continue
            for prefix, action in (("entry", interactions[0]), ("exit", interactions[-1])):
                found = self.key(action) if action.get("type") == "action" else None
                if found is None:
                    continue
                rows.row(found[0], found[0], found[1])
                rows.distinct(found[0], f"{prefix}_nb_uniq_visitors", visit.get("visitorId"))
                rows.add(found[0], f"{prefix}_nb_visits")
                if prefix == "entry":
                    actions = _int(visit.get("actions"))
                    rows.add(found[0], "entry_nb_actions", actions)
                    rows.add(found[0], "entry_sum_visit_length", _int(visit.get("visitDuration")))
                    rows.add(found[0], "entry_bounce_count", 1.0 if actions <= 1 else 0.0)
        return self._truncate(rows.done())

    def merge(self, parts: list[Any], ctx: Context) -> Any:
        return self._truncate(super().merge(parts, ctx))

    def _truncate(self, rows: dict[str, Row]) -> dict[str, Row]:
        """Folders keep 99 pages plus a summed ``<folder>/ - Others`` row, like archiving does."""
        if self.by_title:
            return rows
        folders: dict[str, list[str]] = defaultdict(list)
        for key in rows:
            segments = key.split("?")[0].strip("/").split("/")
            if len(segments) > 1 and not rows[key].get("is_summary"):
                folders[segments[0]].append(key)
        for folder, keys in folders.items():
            others_key = f"/{folder}/ - Others"
            limit = _MAX_SUBTABLE_ROWS - 1 if others_key in rows else _MAX_SUBTABLE_ROWS
            if len(keys) <= limit:
                continue
            keys.sort(key=lambda k: (-rows[k].get("nb_visits", 0.0), k))
            others = rows.setdefault(
                others_key, {"label": others_key, "is_summary": True, "_meta": {}}
            )
            for key in keys[_MAX_SUBTABLE_ROWS - 1 :]:
                row = rows.pop(key)
                row.pop("_meta", None)
                _merge_into(others, row)
        return rows

    def render(self, archive: Any, period: Period, ctx: Context) -> Any:
        if self.view:
            # getEntry/ExitPageUrls drop top-level rows without entries/exits before
            # flattening, so every page of a folder that has one stays.
            column = f"{self.view}_nb_visits"
            kept: dict[str, float] = defaultdict(float)
            for key, row in archive.items():
                kept[self._folder(key)] += row.get(column, 0.0)
            archive = {k: r for k, r in archive.items() if kept[self._folder(k)]}
        return super().render(archive, period, ctx)

    def _folder(self, key: str) -> str:
        if self.by_title:
            return key
        segments = key.split("?")[0].strip("/").split("/")
        return segments[0] + "/" if len(segments) > 1 else key

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        load_hits, load_ms = row.pop("load_hits", 0.0), row.pop("load_ms", 0.0)
        meta = row.pop("_meta", {})
        summary = row.pop("is_summary", False)
        out = _ordered(_period_uniques(row, period), self.order, period)
        if load_hits:
            out["avg_page_load_time"] = php_round(load_ms / 1000 / load_hits, 3)
        out["avg_time_on_page"] = quotient(
            out.get("sum_time_spent", 0.0), out.get("nb_hits", 0.0), 0
        )
        out["bounce_rate"] = quotient(
            out.get("entry_bounce_count", 0.0), out.get("entry_nb_visits", 0.0), 2
        )
        out["exit_rate"] = quotient(out.get("exit_nb_visits", 0.0), out.get("nb_visits", 0.0), 2)
        if self.by_title:
            if not self.view:
                out["Actions_PageTitle"] = out["label"]
            out["segment"] = meta.get("segment", "")
        else:
            if "url" in meta:
                out["url"] = meta["url"]
            if not self.view:
                out["Actions_PageUrl"] = out["label"]
            name = {"": "pageUrl", "entry": "entryPageUrl", "exit": "exitPageUrl"}[self.view]
            out["segment"] = f"{name}=={_double_encoded(meta.get('segment_url', ''))}"
        if summary:
            out["is_summary"] = True
        return out


class LinkTable(TableReport):
    """``Actions.getDownloads``/``getOutlinks``: per domain, or per URL with ``flat=1``."""

    def __init__(self, live_type: str, column: str, segment: str, flat: bool) -> None:
        self.live_type, self.column, self.segment, self.flat = live_type, column, segment, flat
        self.numbered = not flat

    def day(self, data: DayData, ctx: Context) -> Any:
        rows = _Rows()
        for hit in _day_hits(data):
            if hit.action.get("type") != self.live_type:
                continue
            url = str(hit.action.get("url") or "")
            key = url.split("://", 1)[-1]
            rows.row(key, key, {"url": url})
            rows.add(key, "nb_hits")
            rows.add(key, "sum_time_spent", 0.0)
            rows.distinct(key, "nb_visits", hit.visit["idVisit"])
            rows.distinct(key, "nb_uniq_visitors", hit.visit.get("visitorId"))
            if hit.ref is not None and hit.ref.get("type") == "search":
                rows.add(key, "nb_hits_following_search")
        urls = rows.done()
        if self.flat:
            return urls
        # Domain rows are the sums of their URL subtable rows (visits too).
        domains: dict[str, Row] = {}
        for row in urls.values():
            domain = urlsplit(row["_meta"]["url"]).netloc
            row = {k: v for k, v in row.items() if k not in ("nb_uniq_visitors", "_meta")}
            row["label"] = domain
            if domain in domains:
                _merge_into(domains[domain], row)
            else:
                domains[domain] = row
        return domains

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        order = ("label", "nb_visits", "nb_uniq_visitors", "nb_hits", "sum_time_spent")
        meta = row.pop("_meta", {})
        out = _ordered(_period_uniques(row, period), order, period)
        if self.flat:
            out["url"] = meta["url"]
            out[self.column] = out["label"]
            out["segment"] = f"{self.segment}=={_double_encoded(meta['url'])}"
        return out


class SearchTable(TableReport):
    """``Actions.getSiteSearchKeywords`` / ``…NoResultKeywords`` / ``…Categories``."""

    strings = frozenset({"exit_nb_visits"})

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "keywords", "noresult" or "categories"

    def key(self, action: Mapping[str, Any]) -> str | None:
        if action.get("type") != "search":
            return None
        if self.mode == "categories":
            return action.get("siteSearchCategory") or None
        if self.mode == "noresult" and action.get("siteSearchCount") not in (0, "0"):
            return None
        return str(action.get("siteSearchKeyword") or "")

    def day(self, data: DayData, ctx: Context) -> Any:
        rows = _Rows()
        for hit in _day_hits(data):
            ref_key = self.key(hit.ref) if hit.ref is not None else None
            if ref_key is not None and hit.spent > 0 and hit.action.get("type") != "event":
                rows.row(ref_key, ref_key)
                rows.add(ref_key, "sum_time_spent", hit.spent)
            key = self.key(hit.action)
            if key is None:
                continue
            rows.row(key, key)
            rows.add(key, "nb_hits")
            rows.distinct(key, "nb_visits", hit.visit["idVisit"])
            rows.distinct(key, "nb_uniq_visitors", hit.visit.get("visitorId"))
        for visit in data.visits:
            interactions = _interactions(visit)
            last = self.key(interactions[-1]) if interactions else None
            if last is not None:
                rows.row(last, last)
                rows.add(last, "exit_nb_visits")
        return rows.done()

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        row.pop("_meta", None)
        hits, visits = row.pop("nb_hits", 0.0), row.get("nb_visits", 0.0)
        if not hits:
            return None
        if self.mode == "categories":
            out: Row = {"label": row["label"], "nb_visits": visits, "nb_actions": hits}
            if period.kind != "day":
                out["sum_daily_nb_uniq_visitors"] = row.get("nb_uniq_visitors", 0.0)
            out["nb_pages_per_search"] = quotient(hits, visits, 1)
            out["segment"] = f"siteSearchCategory=={urlencode(row['label'])}"
            return out
        out = {"label": row["label"], "nb_visits": visits, "nb_hits": hits}
        out["sum_time_spent"] = row.get("sum_time_spent", 0.0)
        if row.get("exit_nb_visits"):
            out["exit_nb_visits"] = row["exit_nb_visits"]
        out["nb_pages_per_search"] = quotient(hits, visits, 1)
        out["avg_time_on_page"] = quotient(out["sum_time_spent"], hits, 0)
        out["bounce_rate"] = 0.0  # searches are never the entry of a page report
        out["exit_rate"] = quotient(row.get("exit_nb_visits", 0.0), visits, 2)
        out["segment"] = f"siteSearchKeyword=={urlencode(row['label'])}"
        return out


class EventTable(TableReport):
    """``Events.getCategory``/``getAction``/``getName`` (and the flat category - action view)."""

    order = (
        "label",
        "nb_uniq_visitors",
        "nb_visits",
        "nb_events",
        "nb_events_with_value",
        "sum_event_value",
        "min_event_value",
        "max_event_value",
    )

    def __init__(self, live_key: str, segment: str, flat: bool = False) -> None:
        self.live_key, self.segment, self.flat = live_key, segment, flat
        self.numbered = not flat

    def day(self, data: DayData, ctx: Context) -> Any:
        # The archiver groups by (category, action, name); rows add those groups up.
        groups = _Rows()
        for visit, action in data.actions:
            if action.get("type") != "event":
                continue
            group = "\x00".join(
                str(action.get(k) or "") for k in ("eventCategory", "eventAction", "eventName")
            )
            groups.row(group, group, {"action": action})
            groups.distinct(group, "nb_uniq_visitors", visit.get("visitorId"))
            groups.distinct(group, "nb_visits", visit["idVisit"])
        rows = _Rows()
        for counts in groups.done().values():
            action = counts["_meta"]["action"]
            label = str(action.get(self.live_key) or "")
            key = f"{label} - {action.get('eventAction')}" if self.flat else label
            meta = (
                {"Events_EventCategory": label, "Events_EventAction": action.get("eventAction")}
                if self.flat
                else {"segment": f"{self.segment}=={urlencode(_html_escape(label))}"}
            )
            rows.row(key, key, meta)
            rows.add(key, "nb_uniq_visitors", counts["nb_uniq_visitors"])
            rows.add(key, "nb_visits", counts["nb_visits"])
        for _, action in data.actions:
            if action.get("type") != "event":
                continue
            label = str(action.get(self.live_key) or "")
            key = f"{label} - {action.get('eventAction')}" if self.flat else label
            row = rows.rows[key]
            rows.add(key, "nb_events")
            rows.add(key, "nb_events_with_value", 0.0)
            rows.add(key, "sum_event_value", 0.0)
            row.setdefault("min_event_value", None)
            row.setdefault("max_event_value", None)
            if action.get("eventValue") is not None:
                value = float(action["eventValue"])
                rows.add(key, "nb_events_with_value")
                rows.add(key, "sum_event_value", value)
                low, high = row["min_event_value"], row["max_event_value"]
                row["min_event_value"] = value if low is None else min(low, value)
                row["max_event_value"] = value if high is None else max(high, value)
        return rows.done()

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        if row["min_event_value"] is None:
            # Periods answer max_event_value false when no event had a value.
            row["min_event_value"] = 0.0
            row["max_event_value"] = 0.0 if period.kind == "day" else False
        out = _ordered(_period_uniques(row, period), self.order, period)
        meta = {
            k: out.pop(k)
            for k in ("segment", "Events_EventCategory", "Events_EventAction")
            if k in out
        }
        out["avg_event_value"] = quotient(out["sum_event_value"], out["nb_events_with_value"], 2)
        out.update(meta)
        return out

    def sort_key(self, row: Row) -> tuple[Any, ...]:
        return (-float(row["nb_visits"]), *natural_key(row["label"]))


class ContentTable(TableReport):
    """``Contents.getContentNames``/``getContentPieces``: impressions and interactions."""

    sort_column = "nb_impressions"
    numbered = True

    def __init__(self, live_key: str, segment: str) -> None:
        self.live_key, self.segment = live_key, segment

    def day(self, data: DayData, ctx: Context) -> Any:
        rows = _Rows()
        for _, action in data.actions:
            if str(action.get("type")) != "13":
                continue
            label = str(action.get(self.live_key) or "")
            rows.row(label, label)
            rows.add(label, "nb_impressions", 0.0 if action.get("contentInteraction") else 1.0)
            rows.add(label, "nb_interactions", 1.0 if action.get("contentInteraction") else 0.0)
        return rows.done()

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        row.pop("_meta", None)
        row["interaction_rate"] = quotient(row["nb_interactions"], row["nb_impressions"], 4)
        row["segment"] = f"{self.segment}=={urlencode(row['label'])}"
        return row


class ActionDimensionTable(TableReport):
    """``CustomDimensions.getCustomDimension`` for an action-scope dimension."""

    order = (
        "label",
        "nb_visits",
        "nb_uniq_visitors",
        "nb_hits",
        "sum_time_spent",
        "bounce_count",
        "exit_nb_visits",
    )

    numbered = True

    def __init__(self, idcustomdimension: int) -> None:
        self.key_name = f"dimension{idcustomdimension}"

    def value(self, action: Mapping[str, Any] | None) -> str | None:
        if action is None or action.get("type") != "action":
            return None
        value = action.get(self.key_name)
        return None if value in (None, "") else str(value)

    def day(self, data: DayData, ctx: Context) -> Any:
        rows = _Rows()
        for hit in _day_hits(data):
            ref = self.value(hit.ref)
            if ref is not None and hit.spent > 0 and hit.action.get("type") != "event":
                rows.row(ref, ref)
                rows.add(ref, "sum_time_spent", hit.spent)
            key = self.value(hit.action)
            if key is None:
                continue
            rows.row(key, key)
            rows.add(key, "nb_hits")
            rows.add(key, "sum_time_spent", 0.0)
            rows.distinct(key, "nb_visits", hit.visit["idVisit"])
            rows.distinct(key, "nb_uniq_visitors", hit.visit.get("visitorId"))
        for visit in data.visits:
            pages = [a for a in _interactions(visit) if a.get("type") == "action"]
            if not pages:
                continue
            first, last = self.value(pages[0]), self.value(pages[-1])
            if first is not None and _int(visit.get("actions")) <= 1:
                rows.row(first, first)
                rows.add(first, "bounce_count")
            if last is not None:
                rows.row(last, last)
                rows.add(last, "exit_nb_visits")
        return rows.done()

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        row.pop("_meta", None)
        if not row.get("nb_hits"):
            return None
        row.setdefault("bounce_count", 0.0)
        row.setdefault("exit_nb_visits", 0.0)
        out = _ordered(_period_uniques(row, period), self.order, period)
        out["avg_time_on_dimension"] = quotient(out["sum_time_spent"], out["nb_hits"], 0)
        out["bounce_rate"] = quotient(out["bounce_count"], out["nb_visits"], 2)
        out["exit_rate"] = quotient(out["exit_nb_visits"], out["nb_visits"], 2)
        out["segment"] = f"{self.key_name}=={urlencode(out['label'])}"
        return out


class ProductTable(TableReport):
    """``Goals.getItemsSku``/``Name``/``Category`` from order (or cart) items and product views."""

    sort_column = "revenue"

    def __init__(self, by: str, abandoned: bool) -> None:
        self.by, self.abandoned = by, abandoned  # by: "sku", "name" or "category"

    def item_keys(self, item: Mapping[str, Any]) -> list[str]:
        if self.by == "sku":
            return [str(item.get("itemSKU") or "")]
        if self.by == "name":
            return [str(item.get("itemName") or "")]
        return [str(c) for c in item.get("categories") or () if c]

    def view_keys(self, action: Mapping[str, Any]) -> list[str]:
        if self.by == "sku":
            return [str(action["productViewSku"])] if action.get("productViewSku") else []
        if self.by == "name":
            return [str(action["productViewName"])] if action.get("productViewName") else []
        return [str(c) for c in action.get("productViewCategories") or () if c]

    def day(self, data: DayData, ctx: Context) -> Any:
        if not ctx.site.ecommerce:
            return {}
        rows = _Rows()
        money: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        wanted = "ecommerceAbandonedCart" if self.abandoned else "ecommerceOrder"
        for _, action in data.actions:
            if action.get("type") != wanted:
                continue
            for item in action.get("itemDetails") or ():
                # MySQL sums the DECIMAL-like prices exactly.
                price, quantity = Decimal(str(item.get("price") or 0)), _int(item.get("quantity"))
                for key in self.item_keys(item):
                    rows.row(key, key)
                    money[key]["revenue"] += price * quantity
                    money[key]["price"] += price
                    rows.add(key, "quantity", quantity)
                    rows.distinct(key, "orders", id(action))
        for key, sums in money.items():
            rows.rows[key].update({name: float(total) for name, total in sums.items()})
        for visit, action in data.actions:
            if action.get("type") != "action":
                continue
            for key in self.view_keys(action):
                rows.row(key, key)
                rows.add(key, "nb_actions")
                rows.add(key, "view_price", float(action.get("productViewPrice") or 0))
                rows.distinct(key, "nb_visits", visit["idVisit"])
                rows.distinct(key, "nb_uniq_visitors", visit.get("visitorId"))
        return rows.done()

    def finish(self, row: Row, period: Period, ctx: Context) -> Row | None:
        row.pop("_meta", None)
        price = row.pop("price", 0.0)
        orders = row.pop("orders", 0.0)
        view_price = row.pop("view_price", 0.0)
        out: Row = {"label": row["label"]}
        if orders:
            out.update(revenue=row["revenue"], quantity=row["quantity"])
            if not self.abandoned:
                out["orders"] = orders
        else:
            # Only viewed: the price comes from the product pages.
            price, orders = view_price, row.get("nb_actions", 0.0)
        out["nb_visits"] = row.get("nb_visits", 0.0)
        out["nb_uniq_visitors"] = row.get("nb_uniq_visitors", 0.0)
        out["nb_actions"] = row.get("nb_actions", 0.0)
        out = _period_uniques(out, period)
        if self.abandoned and "revenue" in out:
            out["abandoned_carts"] = orders
        converted = orders if "revenue" in out else 0.0
        out["avg_price"] = quotient(price, orders, 2)
        out["avg_quantity"] = quotient(row.get("quantity", 0.0), converted, 1)
        out["conversion_rate"] = quotient(converted, out["nb_visits"], 4)
        field_name = {"sku": "productSku", "name": "productName", "category": "productCategory"}
        out["segment"] = f"{field_name[self.by]}=={urlencode(out['label'])}"
        return out


# --------------------------------------------------------------------------- registry


REPORTS: dict[str, Callable[[Mapping[str, str], SiteInfo], Report]] = {
    "VisitsSummary.get": lambda p, s: VisitsSummary(),
    "VisitFrequency.get": lambda p, s: VisitFrequency(),
    "Actions.get": lambda p, s: ActionsSummary(),
    "Goals.get": lambda p, s: GoalsSummary(),
    "Referrers.getReferrerType": lambda p, s: VisitTable(
        _referrer_type, sql_groups=_REFERRER_GROUPS
    ),
    "Referrers.getAll": lambda p, s: VisitTable(_any_referrer, sql_groups=_REFERRER_GROUPS),
    "Referrers.getSearchEngines": lambda p, s: VisitTable(
        _referrer_of("search"), sql_groups=_REFERRER_GROUPS, numbered=True
    ),
    "Referrers.getKeywords": lambda p, s: VisitTable(
        _search_keyword, sql_groups=_REFERRER_GROUPS, blank_label=_NO_KEYWORD, numbered=True
    ),
    "Referrers.getWebsites": lambda p, s: VisitTable(
        _referrer_of("website"), sql_groups=_REFERRER_GROUPS, numbered=True
    ),
    "Referrers.getSocials": lambda p, s: VisitTable(
        _referrer_of("social"), sql_groups=_REFERRER_GROUPS, numbered=True
    ),
    "Referrers.getCampaigns": lambda p, s: VisitTable(
        _referrer_of("campaign"), sql_groups=_REFERRER_GROUPS, numbered=True
    ),
    "UserCountry.getCountry": lambda p, s: VisitTable(_country),
    "UserCountry.getCity": lambda p, s: VisitTable(_city, strings=_SQL_SUMS),
    "DevicesDetection.getType": lambda p, s: VisitTable(
        _device_type, fixed_rows=_all_device_types, strings=_SQL_SUMS
    ),
    "DevicesDetection.getBrowsers": lambda p, s: VisitTable(_browser, strings=_SQL_SUMS),
    "DevicesDetection.getOsVersions": lambda p, s: VisitTable(
        _os_version, goals=False, strings=_SQL_SUMS
    ),
    "Resolution.getResolution": lambda p, s: VisitTable(
        _field("resolution", "resolution"), goals=False, strings=_SQL_SUMS
    ),
    "UserLanguage.getLanguage": lambda p, s: VisitTable(_language, goals=False, strings=_SQL_SUMS),
    "UserLanguage.getLanguageCode": lambda p, s: VisitTable(
        _language_code, goals=False, strings=_SQL_SUMS
    ),
    "VisitTime.getVisitInformationPerLocalTime": lambda p, s: VisitTable(
        _local_hour,
        goals=False,
        by_label=True,
        fixed_rows=_local_hours,
        strings=_SQL_SUMS,
    ),
    "VisitTime.getVisitInformationPerServerTime": lambda p, s: VisitTable(
        _server_hour,
        by_label=True,
        conversion_dimension=_conversion_hour,
        day_labels=_site_time_day,
        relabel=_site_time_rows,
        strings=_SQL_SUMS,
    ),
    "UserId.getUsers": lambda p, s: VisitTable(_user, goals=False, strings=_SQL_ALL),
    "CustomDimensions.getCustomDimension": lambda p, s: _custom_dimension(p, s),
    "Actions.getPageUrls": lambda p, s: PageTable(by_title=False),
    "Actions.getPageTitles": lambda p, s: PageTable(by_title=True),
    "Actions.getEntryPageUrls": lambda p, s: PageTable(by_title=False, view="entry"),
    "Actions.getExitPageUrls": lambda p, s: PageTable(by_title=False, view="exit"),
    "Actions.getEntryPageTitles": lambda p, s: PageTable(by_title=True, view="entry"),
    "Actions.getExitPageTitles": lambda p, s: PageTable(by_title=True, view="exit"),
    "Actions.getDownloads": lambda p, s: LinkTable(
        "download", "Actions_DownloadUrl", "downloadUrl", _flag(p, "flat")
    ),
    "Actions.getOutlinks": lambda p, s: LinkTable(
        "outlink", "Actions_ClickedUrl", "outlinkUrl", _flag(p, "flat")
    ),
    "Actions.getSiteSearchKeywords": lambda p, s: SearchTable("keywords"),
    "Actions.getSiteSearchNoResultKeywords": lambda p, s: SearchTable("noresult"),
    "Actions.getSiteSearchCategories": lambda p, s: SearchTable("categories"),
    "Events.getCategory": lambda p, s: EventTable(
        "eventCategory", "eventCategory", flat=_flag(p, "flat")
    ),
    "Events.getAction": lambda p, s: EventTable("eventAction", "eventAction"),
    "Events.getName": lambda p, s: EventTable("eventName", "eventName"),
    "Contents.getContentNames": lambda p, s: ContentTable("contentName", "contentName"),
    "Contents.getContentPieces": lambda p, s: ContentTable("contentPiece", "contentPiece"),
    "Goals.getItemsSku": lambda p, s: ProductTable("sku", _flag(p, "abandonedCarts")),
    "Goals.getItemsName": lambda p, s: ProductTable("name", _flag(p, "abandonedCarts")),
    "Goals.getItemsCategory": lambda p, s: ProductTable("category", _flag(p, "abandonedCarts")),
}


def _flag(params: Mapping[str, str], name: str) -> bool:
    return str(params.get(name, "0")) not in ("", "0", "false")


def _custom_dimension(params: Mapping[str, str], site: SiteInfo) -> Report:
    wanted = str(params.get("idDimension", ""))
    for dimension in site.dimensions:
        if str(dimension.idcustomdimension) == wanted:
            if dimension.scope == "action":
                return ActionDimensionTable(dimension.idcustomdimension)
            return VisitTable(
                _visit_dimension(dimension.idcustomdimension),
                strings=_SQL_ALL,
                processed=True,
            )
    raise ReportError(f"Dimension {wanted} for website {site.idsite} does not exist.")


# --------------------------------------------------------------------------- API rendering

_PERCENT = re.compile(r"^(bounce_rate|conversion_rate|exit_rate|interaction_rate)")
_DURATIONS = {"avg_time_on_site", "avg_time_on_page", "avg_time_on_dimension"}


def _format(value: Any, key: str, mode: str) -> Any:
    """``format_metrics``: ``bc`` (default) formats rates, ``1`` also durations, ``0`` nothing."""
    if isinstance(value, dict):
        return {k: _format(v, k, mode) for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, float | int):
        return value
    if mode != "0" and _PERCENT.match(key):
        return percent(value)
    if mode == "1" and key.split("_new")[0].split("_returning")[0] in _DURATIONS:
        return pretty_duration(int(value))
    return json_number(value)


def _post_process(body: Any, params: Mapping[str, str]) -> Any:
    """Generic filters Matomo applies after archiving (limit/offset, column selection)."""
    mode = str(params.get("format_metrics", "bc"))
    if isinstance(body, dict):
        return _select_columns(_format(body, "", mode), params)
    rows = [_select_columns(_format(r, "", mode), params) for r in body]
    offset = max(_int(params.get("filter_offset")), 0)
    limit = int(params.get("filter_limit") or 100)
    return rows[offset:] if limit < 0 else rows[offset : offset + limit]


_METADATA = {
    "label",
    "segment",
    "idsubdatatable",
    "referrer_type",
    "referer_type",
    "url",
    "logo",
    "code",
    "logoHeight",
    "city_name",
    "region",
    "country",
    "country_name",
    "region_name",
    "idvisitor",
    "Actions_PageUrl",
    "Actions_PageTitle",
    "Actions_DownloadUrl",
    "Actions_ClickedUrl",
    "Events_EventCategory",
    "Events_EventAction",
    "is_summary",
}


def _select_columns(row: Row, params: Mapping[str, str]) -> Row:
    show = [c for c in str(params.get("showColumns") or "").split(",") if c]
    hide = {c for c in str(params.get("hideColumns") or "").split(",") if c}
    if show:
        row = {k: v for k, v in row.items() if k in show or k in _METADATA}
    return {k: v for k, v in row.items() if k not in hide}


# Segments over visit fields (Live key, case-insensitive compare) the demo can filter on.
_SEGMENTS = {
    "visitorType": "visitorType",
    "deviceType": "deviceType",
    "referrerType": "referrerType",
    "referrerName": "referrerName",
    "countryCode": "countryCode",
    "browserCode": "browserCode",
    "operatingSystemCode": "operatingSystemCode",
    "userId": "userId",
    "visitEcommerceStatus": "visitEcommerceStatus",
    "visitConverted": "visitConverted",
    "languageCode": "languageCode",
    "resolution": "resolution",
}
_CONDITION = re.compile(r"^([A-Za-z0-9_]+)(==|!=)(.*)$")


def segment_filter(segment: str) -> Callable[[Visit], bool]:
    """A visit predicate for ``a==x,b==y;c!=z`` (``,`` = OR binds tighter than ``;`` = AND)."""
    groups: list[list[tuple[str, str, str]]] = []
    for group in segment.split(";"):
        conditions = []
        for text in group.split(","):
            match = _CONDITION.match(text)
            if match is None or match.group(1) not in _SEGMENTS:
                name = match.group(1) if match else text
                raise ReportError(f"Segment '{name}' is not a supported segment.")
            conditions.append((_SEGMENTS[match.group(1)], match.group(2), match.group(3)))
        groups.append(conditions)

    def accept(visit: Visit) -> bool:
        return all(
            any(
                (str(visit.get(f) or "").lower() == unquote_plus(v).lower()) == (op == "==")
                for f, op, v in group
            )
            for group in groups
        )

    return accept


def compute_report(
    method: str,
    visits: Iterable[Visit],
    site: SiteInfo,
    period: str,
    date: str,
    params: Mapping[str, str],
    today: dt.date | None = None,
) -> Any:
    """The body Matomo answers for ``method`` (a report of ``REPORTS``) over ``visits``.

    ``visits`` are Live visit objects of the site (any days; each is dated by the site-local day
    of its last action). ``today`` (site-local) resolves ``today``/``lastN`` dates.
    """
    factory = REPORTS.get(method)
    if factory is None:
        raise ReportError(unknown_method_message(method))
    today = today or dt.datetime.now(zone(site.timezone)).date()
    periods, multi = resolve_periods(period, date, today)
    report = factory(params, site)
    if params.get("segment"):
        visits = filter(segment_filter(str(params["segment"])), visits)
    ctx = Context(site, params, index_days(visits, site.timezone))
    bodies: dict[str, Any] = {}
    for item in periods:
        body = report.render(report.archive(item, ctx), item, ctx)
        if multi and report.single_row and not ctx.has_data(item):
            body = []  # a period without an archive inside a date map
        bodies[item.label] = _post_process(body, params)
    return bodies if multi else bodies[periods[0].label]


def period_days(period: str, date: str, today: dt.date) -> list[dt.date]:
    """Every local day a request covers (what a dataset must load to answer it)."""
    periods, _ = resolve_periods(period, date, today)
    return sorted({d for p in periods for d in p.days()})


def unknown_method_message(method: str) -> str:
    """Matomo's message for a method that does not exist (module known or not)."""
    module, _, name = method.partition(".")
    if not name:
        return (
            "The parameter 'method' isn't set in the Request, and a default value wasn't provided."
        )
    if module not in KNOWN_MODULES:
        return (
            f"The plugin {module} is not enabled. You can activate the plugin on Settings &gt; "
            "Plugins page in Matomo."
        )
    return (
        f"The method '{name}' does not exist or is not available in the module "
        f"'\\Piwik\\Plugins\\{module}\\API'."
    )


KNOWN_MODULES = frozenset(
    {m.split(".")[0] for m in REPORTS}
    | {"API", "SitesManager", "Live", "CustomDimensions", "Goals", "UsersManager"}
)
