"""Statistics dimensions counted by hit.lua, read through /v1/stats/top, against a real
server through the real app: per dimension, the bounds, spam and own-host exclusion,
UTM parsing, and a Vietnamese address behind a trusted proxy."""

from __future__ import annotations

import asyncio
from typing import Any

from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.state import FOLDER
from tests.counter.conftest import BROWSER_UA, GOOGLEBOT, Counter, CounterFactory

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.0 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1")
VN_ADDRESS = "14.160.0.1"  # VNPT
US_ADDRESS = "8.8.8.8"


async def utm_hit(counter: Counter, page_query: str, **fields: Any) -> None:
    """A pageview whose body carries the page URL's query (``Counter.hit``'s ``query`` is the URL's)."""
    body = {"site": "default", "kind": "pageview", "path": "/", **fields, "query": page_query}
    response = await counter.client.post("/v1/hit", json=body, headers={"User-Agent": BROWSER_UA})
    assert response.status == 204


async def top(counter: Counter, dimension: str, **params: str) -> list[dict[str, Any]]:
    response = await counter.client.get("/v1/stats/top", params={"site": "default", "dimension": dimension,
                                                                 "limit": "1000", **params})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["dimension"] == dimension
    rows: list[dict[str, Any]] = body["rows"]
    return rows


def table(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {row["key"]: (row["visits"], row["pageviews"]) for row in rows}


async def test_each_dimension_counts_visits_and_pageviews(counter: Counter) -> None:
    await utm_hit(counter, "?utm_source=Newsletter&utm_medium=email&utm_campaign=Tet+2027",
                  visitor="a", path="/news/1", referrer="https://www.google.com/search?q=x")
    await counter.hit(visitor="a", path="/news/2", referrer="http://portal.test/news/1")  # same visit, internal
    await counter.hit(visitor="b", path="/news/1", ua=IPHONE)
    await counter.hit(visitor="c", path="/", ua=IPAD, referrer="https://facebook.com/")
    await counter.hit(visitor="c", kind="heartbeat")  # counts in no dimension
    await counter.hit(visitor="g", ua=GOOGLEBOT, path="/news/3")
    assert table(await top(counter, "pages")) == {"/news/1": (2, 2), "/news/2": (0, 1), "/": (1, 1)}
    assert table(await top(counter, "referrers")) == {"google.com": (1, 1), "(direct)": (1, 1), "facebook.com": (1, 1)}
    assert table(await top(counter, "campaigns")) == {"newsletter / email / tet 2027": (1, 1)}
    assert table(await top(counter, "browsers")) == {"Chrome": (1, 2), "Mobile Safari": (2, 2)}
    assert table(await top(counter, "os")) == {"Linux": (1, 2), "iOS": (2, 2)}
    assert table(await top(counter, "devices")) == {"desktop": (1, 2), "mobile": (1, 1), "tablet": (1, 1)}
    assert table(await top(counter, "countries")) == {"(unknown)": (3, 4)}  # loopback has no country
    assert table(await top(counter, "bots")) == {"Googlebot": (0, 1)}
    rows = await top(counter, "pages")
    assert [row["key"] for row in rows] == ["/news/1", "/", "/news/2"]  # by visits, then pageviews


async def test_site_own_host_is_not_a_referrer(counter: Counter) -> None:
    await counter.hit(visitor="a", referrer="http://portal.test/start")  # starts a visit from its own page
    await counter.hit(visitor="a", path="/2", referrer="http://www.portal.test/")
    assert table(await top(counter, "referrers")) == {"(direct)": (1, 0)}


async def test_referrer_spam_is_excluded(counter: Counter) -> None:
    await counter.hit(visitor="a", referrer="http://0n-line.tv/")  # on Matomo's list
    await counter.hit(visitor="b", referrer="https://sub.100dollars-seo.com/x")  # a subdomain of a listed host
    await counter.hit(visitor="c", referrer="https://vnexpress.net/")
    assert table(await top(counter, "referrers")) == {"vnexpress.net": (1, 1)}
    assert (await counter.stats())["today"] == 3  # spam is excluded from referrers only


async def test_utm_parts_missing_and_other_parameters(counter: Counter) -> None:
    await utm_hit(counter, "?utm_source=zalo", visitor="a")
    await utm_hit(counter, "?id=5&utm_campaign=%C4%90%E1%BB%8Dc+b%C3%A1o&session=secret", visitor="b")
    await utm_hit(counter, "?page=2", visitor="c")
    rows = table(await top(counter, "campaigns"))
    assert rows == {"zalo / (none) / (none)": (1, 1), "(none) / (none) / đọc báo": (1, 1)}


async def test_vietnamese_address_through_trusted_proxy(counter: Counter) -> None:
    await counter.hit(visitor="a", headers={"X-Forwarded-For": VN_ADDRESS})
    await counter.hit(visitor="b", headers={"X-Forwarded-For": f"{US_ADDRESS}, {VN_ADDRESS}"})  # nginx appended
    await counter.hit(visitor="c", headers={"X-Forwarded-For": US_ADDRESS})
    assert table(await top(counter, "countries")) == {"VN": (2, 2), "US": (1, 1)}


async def test_untrusted_peer_cannot_claim_an_address(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, trusted_proxies=())
    await counter.hit(visitor="a", headers={"X-Forwarded-For": VN_ADDRESS})
    assert table(await top(counter, "countries")) == {"(unknown)": (1, 1)}


async def test_junk_paths_and_referrers_stay_bounded(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, top_entries=20, rate_limits_enabled=False)
    for chunk in range(0, 2000, 200):  # concurrent: batched commits, as under real load
        await asyncio.gather(*(counter.hit(visitor=f"v{index}", path=f"/junk/{index}",
                                           referrer=f"https://junk{index}.example/")
                               for index in range(chunk, chunk + 200)))
    await counter.app[FOLDER].fold("default")  # the statistics log into the top lists (reads do it too)
    keys = SiteKeys("default")
    client = counter.app_redis()
    for dimension in ("pages", "referrers"):
        for unit, bucket in (("day", "2026-11-26"), ("month", "2026-11")):
            fields = await client.hkeys(keys.top_counts(unit, bucket, dimension))
            assert len(fields) == 21 and b"(other)" in fields
            assert await client.zcard(keys.top_rank(unit, bucket, dimension)) == 20
        rows = table(await top(counter, dimension))
        assert len(rows) == 21
        assert rows["(other)"] == (1980, 1980)
        assert sum(visits for visits, _ in rows.values()) == 2000
    assert table(await top(counter, "browsers")) == {"Chrome": (2000, 2000)}


async def test_the_lowest_ranked_key_is_evicted_into_other(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, top_entries=2)
    for index, path in enumerate(["/a", "/a", "/b", "/c", "/a", "/d"]):
        await counter.hit(visitor=f"v{index}", path=path)
    # /c evicts /b (1 visit, the lowest) and ranks at 1 + 1; /a keeps counting (3);
    # /d evicts /c (2, now the lowest) and ranks at 2 + 1: /b's and /c's visits are (other)
    assert table(await top(counter, "pages")) == {"/a": (3, 3), "/d": (1, 1), "(other)": (2, 2)}
    ranking = await counter.app_redis().zrange(SiteKeys("default").top_rank("day", "2026-11-26", "pages"),
                                               0, -1, withscores=True)
    assert ranking == [(b"/a", 3.0), (b"/d", 3.0)]


async def test_a_popular_key_is_listed_among_thousands_of_junk_keys(
    redis_url: str, start_counter: CounterFactory
) -> None:
    """Space-Saving's guarantee: a key with more than 1/N of a bucket's visits is listed,
    though the bucket filled with junk before its first visit and junk keeps coming
    between its visits (in batches, so evictions within one script call occur)."""
    counter = await start_counter(redis_url, top_entries=20, rate_limits_enabled=False)
    sent = 0

    async def junk(count: int) -> None:
        nonlocal sent
        await asyncio.gather(*(counter.hit(visitor=f"j{sent + index}", path=f"/junk/{sent + index}",
                                           referrer=f"https://junk{sent + index}.example/") for index in range(count)))
        sent += count

    await junk(1000)
    for round_ in range(200):  # 200 of 3,200 visits: 1/16 of the bucket, above 1/20
        await asyncio.gather(counter.hit(visitor=f"fan{round_}", path="/tin-nong", referrer="https://zalo.me/"),
                             junk(10))
    assert sent == 3000
    for dimension, key in (("pages", "/tin-nong"), ("referrers", "zalo.me")):
        for period in ({}, {"from": "2026-11-26", "to": "2026-11-26"}):  # the month's and the day's buckets
            rows = table(await top(counter, dimension, **period))
            assert len(rows) <= 21
            # listed, counted exactly since admission: missing at most what it had when the
            # bucket's lowest estimate (<= 3,200 / 20) evicted it
            assert 200 - 160 <= rows[key][0] <= 200, (dimension, rows[key])
            assert sum(visits for visits, _ in rows.values()) == 3200
            assert sum(pageviews for _, pageviews in rows.values()) == 3200
    assert table(await top(counter, "browsers")) == {"Chrome": (3200, 3200)}


async def test_batched_hits_count_as_one_by_one(counter: Counter) -> None:
    await asyncio.gather(*(counter.hit(visitor=f"v{i}", path=f"/p{i % 3}", referrer="https://zing.vn/")
                           for i in range(60)))
    assert table(await top(counter, "pages")) == {"/p0": (20, 20), "/p1": (20, 20), "/p2": (20, 20)}
    assert table(await top(counter, "referrers")) == {"zing.vn": (60, 60)}


async def test_statistics_can_be_turned_off(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, statistics_enabled=False)
    await counter.hit(visitor="a", path="/x")
    assert await top(counter, "pages") == []
    assert (await counter.stats())["today"] == 1


async def test_range_adds_days_and_months(counter: Counter) -> None:
    await counter.hit(visitor="a", path="/x")  # 2026-11-26
    counter.clock.advance(86400 * 10)  # 2026-12-06
    await counter.hit(visitor="a", path="/x")
    await counter.hit(visitor="b", path="/y", ua=BROWSER_UA)
    assert table(await top(counter, "pages")) == {"/x": (1, 1), "/y": (1, 1)}  # default: this month
    both = table(await top(counter, "pages", **{"from": "2026-11-01", "to": "2026-12-31"}))
    assert both == {"/x": (2, 2), "/y": (1, 1)}
    partial = table(await top(counter, "pages", **{"from": "2026-11-20", "to": "2026-12-05"}))
    assert partial == {"/x": (1, 1)}
