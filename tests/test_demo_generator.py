"""The synthetic Matomo's visits: the shape of real Live visits, deterministic, clock-aware."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from extract.demo.dataset import Dataset, DatasetError
from extract.demo.generator import DayClock, zone
from extract.demo.synthetic import SyntheticDataset

FIXTURES = Path(__file__).parent / "fixtures" / "matomo-5"
LIVE_ACTION_KINDS = ("action", "search", "event", "download", "outlink")


def bundle(name: str) -> Iterator[dict[str, Any]]:
    with gzip.open(FIXTURES / f"{name}.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


@cache
def captured_visits() -> list[dict[str, Any]]:
    visits: list[dict[str, Any]] = []
    for entry in bundle("live"):
        if re.match(r"live/site\d_\d{4}-\d\d-\d\d_offset", entry["file"]):
            visits.extend(json.loads(entry["body"]))
    return visits


def shapes(visits: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """Per (site, row kind): the key orders seen and the JSON types of every key."""
    found: dict[tuple[int, str], dict[str, Any]] = defaultdict(
        lambda: {"orders": set(), "types": defaultdict(set)}
    )

    def note(kind: tuple[int, str], row: dict[str, Any]) -> None:
        found[kind]["orders"].add(tuple(row))
        for key, value in row.items():
            found[kind]["types"][key].add(type(value).__name__)

    for visit in visits:
        note((visit["idSite"], "visit"), visit)
        for action in visit["actionDetails"]:
            note((visit["idSite"], str(action["type"])), action)
    return found


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return SyntheticDataset()


def test_it_is_a_demo_server_dataset(dataset: SyntheticDataset) -> None:
    served: Dataset = dataset  # mypy checks the Protocol; the asserts check the values
    assert served.site_ids() == [1, 2, 3]
    assert served.first_day() == dt.date(2026, 11, 1)
    assert [served.site_timezone(s) for s in (1, 2, 3)] == [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
    ]
    assert served.visits_for_day(1, dt.date(2026, 10, 31), dataset.end_timestamp()) == []


@pytest.fixture(scope="module")
def after(dataset: SyntheticDataset) -> int:
    """The default server clock: every generated day closed, 5 h after the last one."""
    return dataset.end_timestamp() + 5 * 3600


@pytest.fixture(scope="module")
def synthetic(dataset: SyntheticDataset, after: int) -> list[dict[str, Any]]:
    return list(dataset.iter_visits(after))


def test_visits_have_the_keys_order_and_types_of_real_live_visits(
    synthetic: list[dict[str, Any]],
) -> None:
    real, ours = shapes(captured_visits()), shapes(synthetic)
    assert set(ours) >= set(real)  # every captured row kind is generated, for every site
    for kind, shape in ours.items():
        assert kind in real, f"{kind} is not a row kind Matomo sent"
        assert shape["orders"] <= real[kind]["orders"]
        for key, types in shape["types"].items():
            allowed = real[kind]["types"][key]
            if kind == (1, "13") and key == "contentInteraction":
                allowed = allowed | {"str"}  # interactions: the capture only has impressions
            assert types <= allowed, f"{kind} {key}: {types} not in {allowed}"


def test_every_quirk_of_the_capture_is_present(synthetic: list[dict[str, Any]]) -> None:
    shop = [v for v in synthetic if v["idSite"] == 1]
    assert {type(v["totalEcommerceItems"]) for v in shop} == {int, str}
    assert all(isinstance(v["visitServerHour"], str) for v in synthetic)
    assert all(v["referrerKeywordPosition"] is None for v in synthetic)
    actions = [a for v in shop for a in v["actionDetails"]]
    assert {a["type"] for a in actions if not isinstance(a["type"], str)} == {13}
    assert all(a["dimension2"] is None for a in actions if a["type"] != "action")
    assert all(
        a["idpageview"] is None
        for a in actions
        if isinstance(a["type"], str) and a["type"].startswith("ecommerce")
    )
    assert any(a["type"] == "event" and "eventValue" in a for a in actions)
    assert any(a["type"] == "event" and "eventValue" not in a for a in actions)
    searches = [a for a in actions if a["type"] == "search"]
    assert {a["siteSearchCount"] == 0 for a in searches} == {True, False}
    assert {a["siteSearchCategory"] == "" for a in searches} == {True, False}
    assert Counter(v["referrerType"] for v in synthetic).keys() == {
        "direct",
        "search",
        "website",
        "campaign",
        "social",
    }
    assert any(v["referrerKeyword"] == "Keyword not defined" for v in synthetic)
    campaigns = {v["referrerName"] for v in synthetic if v["referrerType"] == "campaign"}
    assert campaigns
    assert all(name == name.lower() for name in campaigns)
    goals = Counter(
        (v["idVisit"], a["goalId"]) for v in shop for a in v["actionDetails"] if a["type"] == "goal"
    )
    assert any(count > 1 and goal == 3 for (_, goal), count in goals.items())
    assert any(v["visitEcommerceStatus"] == "abandonedCart" for v in shop)
    assert any(v["visitEcommerceStatus"] == "ordered" for v in shop)


def test_user_ids_overwrite_the_visitor_id(synthetic: list[dict[str, Any]]) -> None:
    with_user = [v for v in synthetic if v["userId"]]
    assert with_user
    for visit in with_user:
        digest = hashlib.sha1(visit["userId"].encode()).hexdigest()  # noqa: S324 - Matomo's rule
        assert visit["visitorId"] == digest[:16]


def test_returning_visitors_come_back_on_other_days(synthetic: list[dict[str, Any]]) -> None:
    days = defaultdict(set)
    for visit in synthetic:
        days[(visit["idSite"], visit["visitorId"])].add(visit["serverDatePretty"])
    assert sum(1 for seen in days.values() if len(seen) > 1) > 50
    share = Counter(v["visitorType"] == "new" for v in synthetic)
    assert 0.2 < share[False] / len(synthetic) < 0.45


def test_visit_fields_agree_with_their_actions(
    dataset: SyntheticDataset, synthetic: list[dict[str, Any]]
) -> None:
    for visit in synthetic:
        actions = visit["actionDetails"]
        kinds = Counter(str(a["type"]) for a in actions)
        assert visit["actions"] == sum(kinds[k] for k in LIVE_ACTION_KINDS)
        assert visit["interactions"] == kinds["action"] + kinds["search"]
        assert visit["searches"] == kinds["search"]
        assert visit["events"] == kinds["event"]
        assert visit["goalConversions"] == kinds["goal"]
        assert visit["visitConverted"] == int(bool(kinds["goal"] or kinds["ecommerceOrder"]))
        tz = zone(dataset.site_timezone(visit["idSite"]))
        last = visit["lastActionTimestamp"]
        assert visit["serverTimestamp"] == last
        assert visit["lastActionDateTime"] == dt.datetime.fromtimestamp(last, dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        assert visit["serverDate"] == visit["lastActionDateTime"][:10]
        assert visit["visitServerHour"] == str(dt.datetime.fromtimestamp(last, dt.UTC).hour)
        assert visit["serverTimePretty"] == dt.datetime.fromtimestamp(last, tz).strftime("%H:%M:%S")
        offset = dt.datetime.fromtimestamp(last, tz).utcoffset()
        assert offset is not None
        stamps = [a["timestamp"] for a in actions]
        assert stamps == sorted(stamps)
        assert max(stamps) - int(offset.total_seconds()) == last
        positions = [
            a.get("pageviewPosition") for a in actions if a["type"] in ("action", "search")
        ]
        assert positions == list(range(1, len(positions) + 1))
        if len({a["timestamp"] for a in actions}) > 1:
            assert visit["visitDuration"] >= last - visit["firstActionTimestamp"]


def test_ids_are_unique_and_action_ids_shared_per_url(synthetic: list[dict[str, Any]]) -> None:
    visit_ids = [v["idVisit"] for v in synthetic]
    assert len(visit_ids) == len(set(visit_ids))
    page_ids = [a["pageId"] for v in synthetic for a in v["actionDetails"] if "pageId" in a]
    assert len(page_ids) == len(set(page_ids))
    by_url: dict[tuple[int, str], set[int]] = defaultdict(set)
    for visit in synthetic:
        for action in visit["actionDetails"]:
            if action["type"] in ("action", "download", "outlink"):
                by_url[(visit["idSite"], action["url"])].add(action["pageIdAction"])
    assert all(len(ids) == 1 for ids in by_url.values())
    assert len({next(iter(ids)) for ids in by_url.values()}) == len(by_url)


def test_same_seed_gives_identical_bytes() -> None:
    one, two = SyntheticDataset(days=4), SyntheticDataset(days=4)
    now = one.end_timestamp()
    assert orjson.dumps(list(one.iter_visits(now))) == orjson.dumps(list(two.iter_visits(now)))
    other = SyntheticDataset(seed=7, days=4)
    assert orjson.dumps(list(other.iter_visits(now))) != orjson.dumps(list(one.iter_visits(now)))


def test_a_site_day_alone_equals_the_same_day_after_others() -> None:
    day = dt.date(2026, 11, 9)
    alone = SyntheticDataset(cache_size=1)
    busy = SyntheticDataset(cache_size=1)
    now = busy.end_timestamp()
    for site in busy.site_ids():
        for offset in range(busy.days):
            busy.visits_for_day(site, busy.first_day() + dt.timedelta(offset), now)
    assert orjson.dumps(alone.visits_for_day(2, day, now)) == orjson.dumps(
        busy.visits_for_day(2, day, now)
    )


def test_visits_are_fresh_dicts(dataset: SyntheticDataset, after: int) -> None:
    day = dataset.first_day()
    first = dataset.visits_for_day(1, day, after)
    first[0]["actionDetails"].clear()
    first[0]["pluginsIcons"][0]["pluginName"] = "mutated"
    again = dataset.visits_for_day(1, day, after)
    assert again[0]["actionDetails"]
    assert again[0]["pluginsIcons"][0]["pluginName"] == "cookie"


@pytest.mark.parametrize("site", [1, 2, 3])
def test_visits_stay_inside_their_local_day(
    dataset: SyntheticDataset, after: int, site: int
) -> None:
    tz = zone(dataset.site_timezone(site))
    for offset in range(dataset.days):
        day = dataset.first_day() + dt.timedelta(offset)
        visits = dataset.visits_for_day(site, day, after)
        keys = [(v["lastActionTimestamp"], v["idVisit"]) for v in visits]
        assert keys == sorted(keys)
        for visit in visits:
            assert dt.datetime.fromtimestamp(visit["firstActionTimestamp"], tz).date() == day
            assert dt.datetime.fromtimestamp(visit["lastActionTimestamp"], tz).date() == day
        clock = DayClock.of(day, dataset.site_timezone(site))
        last = [v["lastActionTimestamp"] for v in visits]
        assert len(last) > len(set(last)), "several visits share a lastActionTimestamp second"
        assert max(last) >= clock.end - 5, "a visit ends seconds before local midnight"


def test_volume_varies_by_weekday(dataset: SyntheticDataset, after: int) -> None:
    counts = {
        dataset.first_day() + dt.timedelta(n): len(
            dataset.visits_for_day(2, dataset.first_day() + dt.timedelta(n), after)
        )
        for n in range(dataset.days)
    }
    weekday = [c for d, c in counts.items() if d.weekday() < 5]
    weekend = [c for d, c in counts.items() if d.weekday() >= 5]
    assert sum(weekend) / len(weekend) < 0.8 * sum(weekday) / len(weekday)
    assert len(set(weekday)) > 3


def test_dst_fall_back_day_has_25_hours_and_both_one_oclocks(
    dataset: SyntheticDataset, after: int
) -> None:
    day = dt.date(2026, 11, 1)
    clock = DayClock.of(day, "America/New_York")
    assert clock.end - clock.start == 25 * 3600
    visits = dataset.visits_for_day(2, day, after)
    tz = zone("America/New_York")
    one_am = [
        dt.datetime.fromtimestamp(v["lastActionTimestamp"], tz)
        for v in visits
        if dt.datetime.fromtimestamp(v["lastActionTimestamp"], tz).hour == 1
    ]
    assert {t.fold for t in one_am} == {0, 1}
    for visit in visits:
        real = visit["lastActionTimestamp"]
        local = visit["actionDetails"][-1]["timestamp"]
        assert real - local == (14400 if real < clock.transition else 18000)


def test_open_day_grows_with_the_server_clock(dataset: SyntheticDataset) -> None:
    day = dt.date(2026, 11, 10)
    clock = DayClock.of(day, dataset.site_timezone(1))
    noon = clock.start + 12 * 3600
    earlier = dataset.visits_for_day(1, day, noon)
    later = dataset.visits_for_day(1, day, noon + 3600)
    final = dataset.visits_for_day(1, day, clock.end + 3600)
    assert 0 < len(earlier) < len(later) < len(final)
    assert dataset.visits_for_day(1, day, clock.start - 1) == []
    grown = {v["idVisit"]: v for v in later}
    changed = 0
    for visit in earlier:
        assert visit["lastActionTimestamp"] <= noon
        seen_later = grown[visit["idVisit"]]
        assert len(seen_later["actionDetails"]) >= len(visit["actionDetails"])
        assert seen_later["lastActionTimestamp"] >= visit["lastActionTimestamp"]
        changed += seen_later["actions"] != visit["actions"]
    assert changed > 0, "some visit grew between the two requests"


def test_late_data_appears_and_grows_in_a_past_day() -> None:
    late, on_time = SyntheticDataset(days=3, late_fraction=0.3), SyntheticDataset(days=3)
    day = dt.date(2026, 11, 2)
    clock = DayClock.of(day, late.site_timezone(1))
    evening = clock.start + 20 * 3600
    seen_late = {v["idVisit"]: v["actions"] for v in late.visits_for_day(1, day, evening)}
    seen_on_time = {v["idVisit"]: v["actions"] for v in on_time.visits_for_day(1, day, evening)}
    assert set(seen_late) < set(seen_on_time), "whole visits arrive late"
    assert any(seen_late[i] < seen_on_time[i] for i in seen_late), "visit tails arrive late"
    # Four hours after the day ended every late action has arrived: the same traffic.
    settled = clock.end + 4 * 3600 + 120
    assert orjson.dumps(late.visits_for_day(1, day, settled)) == orjson.dumps(
        on_time.visits_for_day(1, day, settled)
    )
    after_midnight = len(late.visits_for_day(1, day, clock.end + 60))
    assert after_midnight <= len(late.visits_for_day(1, day, settled))


def test_more_sites_repeat_the_pattern_in_other_time_zones() -> None:
    many = SyntheticDataset(sites=6, days=2, visits_per_day=10)
    zones = [many.site_timezone(s) for s in many.site_ids()]
    assert zones[:3] == ["UTC", "America/New_York", "Europe/Berlin"]
    assert "Asia/Kolkata" in zones
    assert "UTC-3" in zones
    now = many.end_timestamp()
    site = many.call("SitesManager.getSiteFromId", {"idSite": "5"}, now)
    shape = json.loads(
        next(e for e in bundle("meta_examples") if e["file"].endswith("getSiteFromId_site2.json"))[
            "body"
        ]
    )
    assert list(site) == list(shape)
    assert [type(v) for v in site.values()] == [type(v) for v in shape.values()]
    visits = many.visits_for_day(5, many.first_day(), now)
    offset = dt.timedelta(hours=-3).total_seconds()
    assert visits
    assert all(
        v["actionDetails"][0]["timestamp"] - v["firstActionTimestamp"] == offset for v in visits
    )
    with pytest.raises(DatasetError):
        many.visits_for_day(7, many.first_day(), now)


def test_metadata_equals_the_captured_matomo(dataset: SyntheticDataset, after: int) -> None:
    captured = {e["file"]: json.loads(e["body"]) for e in bundle("meta_examples")}
    for site in (1, 2, 3):
        params = {"idSite": str(site)}
        assert (
            dataset.call("SitesManager.getSiteFromId", params, after)
            == captured[f"meta/SitesManager.getSiteFromId_site{site}.json"]
        )
        assert (
            dataset.call("Goals.getGoals", params, after)
            == captured[f"meta/Goals.getGoals_site{site}.json"]
        )
        assert (
            dataset.call("CustomDimensions.getConfiguredCustomDimensions", params, after)
            == (captured[f"meta/CustomDimensions.getConfiguredCustomDimensions_site{site}.json"])
        )
    assert (
        dataset.call("SitesManager.getSitesWithAtLeastViewAccess", {}, after)
        == captured["meta/SitesManager.getSitesWithAtLeastViewAccess.json"]
    )
    assert (
        dataset.call("SitesManager.getAllSitesId", {}, after)
        == captured["meta/SitesManager.getAllSitesId.json"]
    )
    assert dataset.call("API.getMatomoVersion", {}, after) == {"value": "5.0.2"}
    metadata = dataset.call("API.getReportMetadata", {"idSites": "1"}, after)
    real_keys = {k for entry in captured["meta/API.getReportMetadata_site1.json"] for k in entry}
    assert all(set(entry) <= real_keys for entry in metadata)
    assert {(e["module"], e["action"]) for e in metadata} >= {
        ("VisitsSummary", "get"),
        ("Goals", "get"),
        ("Referrers", "getReferrerType"),
        ("CustomDimensions", "getCustomDimension"),
    }


def test_generation_throughput() -> None:
    """Generation + rendering + JSON encoding, on one core (CPU time, not wall time)."""
    big = SyntheticDataset(days=7, visits_per_day=300)
    now = big.end_timestamp()
    started = time.process_time()
    count = sum(1 for visit in big.iter_visits(now) if json.dumps(visit))
    rate = count / (time.process_time() - started)
    assert count > 5000
    assert rate > 2000, f"{rate:.0f} visits/s"
