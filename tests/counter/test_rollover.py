"""Today / this month / last month follow the site's local calendar; nothing is wiped."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.counter.conftest import Counter


def at(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


async def test_local_midnight_in_ho_chi_minh(counter: Counter) -> None:
    counter.clock.set(at("2026-11-26T23:59:59+07:00"))
    await counter.hit(visitor="before")
    counter.clock.set(at("2026-11-27T00:00:01+07:00"))
    await counter.hit(visitor="after")
    stats = await counter.stats()
    assert stats["today"] == 1
    assert stats["this_month"] == 2
    assert stats["total"] == 2
    series = await (await counter.client.get(
        "/v1/stats/series", params={"site": "default", "unit": "day", "from": "2026-11-26", "to": "2026-11-27"}
    )).json()
    assert [(b["start"], b["visits"]) for b in series["buckets"]] == [("2026-11-26", 1), ("2026-11-27", 1)]


async def test_month_end_moves_this_month_to_last_month(counter: Counter) -> None:
    counter.clock.set(at("2026-11-30T23:59:59+07:00"))
    await counter.hit(visitor="november")
    counter.clock.set(at("2026-12-01T00:00:01+07:00"))
    await counter.hit(visitor="december")
    stats = await counter.stats()
    assert (stats["today"], stats["this_month"], stats["last_month"], stats["total"]) == (1, 1, 1, 2)
    assert stats["pageviews"]["last_month"] == 1


async def test_year_end(counter: Counter) -> None:
    counter.clock.set(at("2026-12-31T23:59:59+07:00"))
    await counter.hit(visitor="old-year")
    await counter.hit(visitor="old-year-2")
    counter.clock.set(at("2027-01-01T00:00:01+07:00"))
    await counter.hit(visitor="new-year")
    stats = await counter.stats()
    assert (stats["today"], stats["this_month"], stats["last_month"], stats["total"]) == (1, 1, 2, 3)
    assert stats["as_of"] == "2027-01-01T00:00:01+07:00"


async def test_a_visit_spanning_midnight_is_counted_on_the_day_it_started(counter: Counter) -> None:
    counter.clock.set(at("2026-11-26T23:50:00+07:00"))
    await counter.hit()
    counter.clock.set(at("2026-11-27T00:10:00+07:00"))
    await counter.hit(path="/next")
    stats = await counter.stats()
    assert stats["today"] == 0
    assert stats["pageviews"]["today"] == 1
    assert stats["total"] == 1


async def test_midnight_in_another_zone_with_dst(counter: Counter) -> None:
    origin = {"Origin": "http://news.test"}
    counter.clock.set(at("2026-11-26T23:59:59+01:00"))
    await counter.hit(site="news", visitor="a", headers=origin)
    counter.clock.set(at("2026-11-27T00:00:01+01:00"))
    await counter.hit(site="news", visitor="b", headers=origin)
    stats = await counter.stats("news")
    assert stats["today"] == 1
    assert stats["this_month"] == 2
    assert stats["as_of"] == "2026-11-27T00:00:01+01:00"
    assert (await counter.stats("default"))["total"] == 0


async def test_hour_series_across_the_repeated_dst_hour(counter: Counter) -> None:
    origin = {"Origin": "http://news.test"}
    counter.clock.set(at("2026-10-25T00:30:00+00:00"))  # 02:30 CEST
    await counter.hit(site="news", visitor="summer", headers=origin)
    counter.clock.set(at("2026-10-25T01:30:00+00:00"))  # 02:30 CET, one hour later
    await counter.hit(site="news", visitor="winter", headers=origin)
    response = await counter.client.get("/v1/stats/series", params={
        "site": "news", "unit": "hour", "from": "2026-10-25T00:00", "to": "2026-10-25T04:00"})
    assert response.status == 200
    buckets = (await response.json())["buckets"]
    assert [(b["start"], b["visits"]) for b in buckets] == [
        ("2026-10-25T00:00:00+02:00", 0),
        ("2026-10-25T01:00:00+02:00", 0),
        ("2026-10-25T02:00:00+02:00", 1),
        ("2026-10-25T02:00:00+01:00", 1),
        ("2026-10-25T03:00:00+01:00", 0),
        ("2026-10-25T04:00:00+01:00", 0),
    ]
