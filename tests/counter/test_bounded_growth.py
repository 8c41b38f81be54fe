"""What one client can make Redis keep is bounded (hit.lua, against a real Valkey):
per-path records per address and hour, expiring records of paths that never gathered
views, retry de-duplication per visitor (not per hit), bot rate limits and a capped
bots' online window. Keys are counted, and the per-visitor and per-path costs measured
with MEMORY USAGE (the figures the README quotes are printed with ``-s``)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from portal_pulse.counter.dimensions import DIMENSIONS
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.visitor import path_digest, visitor_from_id
from tests.counter.conftest import GOOGLEBOT, Counter, CounterFactory

KEYS = SiteKeys("default")


async def size(redis: Redis, key: str) -> int:
    """MEMORY USAGE of ``key`` (which must exist)."""
    used = await redis.memory_usage(key)
    assert used is not None, key
    return int(used)


async def key_count(redis: Redis) -> int:
    return len([key async for key in redis.scan_iter(match=KEYS.prefix + "*", count=1000)])


async def hits_from(counter: Counter, address: str, count: int, step: float, **fields: Any) -> list[str]:
    """``count`` pageviews from ``address``, ``step`` seconds apart; their X-Pulse-Counted."""
    answers = []
    for index in range(count):
        body = {key: (value(index) if callable(value) else value) for key, value in fields.items()}
        response = await counter.hit(headers={"X-Forwarded-For": address}, **body)
        assert response.status == 204, await response.text()
        answers.append(response.headers["X-Pulse-Counted"])
        counter.clock.advance(step)
    return answers


async def test_one_address_with_thousands_of_paths_and_event_ids_adds_a_bounded_number_of_keys(
    valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await start_counter(valkey_url)
    redis = counter.app_redis()
    before = await key_count(redis)
    # 2,000 distinct paths and event ids in 20 minutes of one hour: inside the per-visitor
    # and per-address hit limits, so only the growth bounds stop the keys
    answers = await hits_from(counter, "203.0.113.9", 2000, 0.6, visitor="junk",
                              path=lambda i: f"/junk/{i}", id=lambda i: f"event-{i}")
    assert answers.count("1") == 2000  # every pageview counted for the site...
    stats = await counter.stats()
    assert stats["pageviews"]["today"] == 2000
    pages = [key async for key in redis.scan_iter(match=KEYS.prefix + "page:*")]
    assert len(pages) == 100  # ...but only 100 paths got a record
    added = await key_count(redis) - before
    # The statistics: per day and month, per dimension, a hash of counts (capped at
    # top_entries rows plus "(other)") and its ranking (top_entries members), and a profile
    # per day and month: bounded by the calendar, whatever the client sends.
    statistics = [key for pattern in ("top:*", "profile:*") for key in await redis.keys(KEYS.prefix + pattern)]
    assert len(statistics) <= 2 * len(DIMENSIONS) * 2 + 2, statistics
    # 100 pages, one visitor and its retry state, day/month/hour/totals, two HLLs, online,
    # and the rate-limit counters (per minute: 20 x visitor + 20 x address, 1 new-visits, 1 new-paths)
    assert added - len(statistics) <= 100 + 12 + 42, added
    assert not [key async for key in redis.scan_iter(match=KEYS.prefix + "event:*")]
    visitor_fields = await redis.hlen(KEYS.visitor(visitor_from_id("default", "junk")))
    assert visitor_fields <= 101  # 'last' and the paths that got a record: not one per junk path
    downloads = await hits_from(counter, "203.0.113.9", 5, 0.6, visitor="junk", kind="download",
                                path=lambda i: f"/junk/file-{i}.pdf")
    assert downloads == ["1"] * 5 and (await counter.stats())["pageviews"]["today"] == 2000
    totals = await redis.hget(KEYS.totals, "downloads")
    assert totals == b"5"  # past the budget: counted for the site, not for the path


async def test_retries_cost_per_visitor_not_per_hit(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url)
    redis = counter.app_redis()
    retry_key = KEYS.retry(visitor_from_id("default", "seq-visitor"))
    first = await hits_from(counter, "198.51.100.1", 64, 1.0, visitor="seq-visitor", seq=lambda i: i + 1)
    assert first == ["1"] * 64
    one_size = await size(redis, retry_key)
    again = await hits_from(counter, "198.51.100.1", 64, 1.0, visitor="seq-visitor", seq=lambda i: i + 1)
    assert again == ["0; reason=duplicate"] * 64  # every re-sent hit recognised
    many = await hits_from(counter, "198.51.100.1", 446, 1.0, visitor="seq-visitor", seq=lambda i: i + 65)
    assert many.count("1") == 446
    assert await size(redis, retry_key) == one_size < 256  # 510 hits cost what 64 did
    late = await hits_from(counter, "198.51.100.1", 3, 1.0, visitor="seq-visitor", seq=lambda i: 505 + i)
    assert late == ["0; reason=duplicate"] * 3  # still inside the window of 64
    out_of_order = await hits_from(counter, "198.51.100.1", 1, 1.0, visitor="seq-visitor", seq=600)
    gap = await hits_from(counter, "198.51.100.1", 2, 1.0, visitor="seq-visitor", seq=lambda i: 598 + i)
    assert out_of_order == ["1"] and gap == ["1", "1"]  # a hit that arrives late is not a retry
    # clients without sequence numbers: event ids, the last 16 remembered per visitor
    ids = await hits_from(counter, "198.51.100.2", 40, 1.0, visitor="ids", id=lambda i: f"e{i}")
    replay = await hits_from(counter, "198.51.100.2", 16, 1.0, visitor="ids", id=lambda i: f"e{i + 24}")
    assert ids == ["1"] * 40 and replay == ["0; reason=duplicate"] * 16
    ids_key = KEYS.retry(visitor_from_id("default", "ids"))
    assert await size(redis, ids_key) <= 600  # a hashtable: 192 bytes of ids
    assert 0 < await redis.ttl(ids_key) <= 86400


async def test_paths_that_never_gather_views_expire(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, path_keep_views=3, path_retention_seconds=3600)
    redis = counter.app_redis()
    await hits_from(counter, "192.0.2.7", 1, 1.0, visitor="a", path="/rare")
    rare = KEYS.page(path_digest("/rare"))
    assert 3500 < await redis.ttl(rare) <= 3600
    await hits_from(counter, "192.0.2.7", 2, 1.0, visitor=lambda i: f"b{i}", path="/rare")
    assert await redis.ttl(rare) == -1  # three views: kept
    assert await redis.hget(rare, "views") == b"3"


async def test_bot_hits_are_rate_limited_and_their_online_window_capped(
    valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await start_counter(valkey_url, max_bot_hits_per_ip_per_minute=50, max_online_bots=30)
    redis = counter.app_redis()
    results = []
    for index in range(80):
        response = await counter.hit(ua=GOOGLEBOT, visitor=f"bot-{index}", headers={"X-Forwarded-For": "192.0.2.50"})
        results.append(response.headers["X-Pulse-Counted"])
    assert results.count("0; reason=bot") == 50 and results.count("0; reason=rate_limited") == 30
    assert await redis.zcard(KEYS.online("bots")) == 30
    assert (await counter.stats())["online_breakdown"]["bots"] == 30


async def test_memory_per_visitor_path_and_day(valkey_url: str, start_counter: CounterFactory) -> None:
    """The figures the README states (printed): MEMORY USAGE of what one more visitor, one
    more path and one more day add, with the widget's protocol (sequence numbers)."""
    counter = await start_counter(valkey_url)
    redis = counter.app_redis()
    for index in range(200):  # 200 visitors, one pageview of one of 20 paths each
        await counter.hit(visitor=f"m{index}", path=f"/p{index % 20}", seq=1,
                          headers={"X-Forwarded-For": f"10.1.{index // 250}.{index % 250}"})
    vd = visitor_from_id("default", "m7")
    visitor = await size(redis, KEYS.visitor(vd))
    retry = await size(redis, KEYS.retry(vd))
    online = await size(redis, KEYS.online("guests")) / 200
    rates = [key async for key in redis.scan_iter(match=KEYS.prefix + "rate:*")]
    rate = sum([await size(redis, key) for key in rates]) / 200
    page = await size(redis, KEYS.page(path_digest("/p3")))
    day = await size(redis, KEYS.day("2026-11-26"))
    hour = await size(redis, KEYS.hour("2026-11-26T17+0700"))
    print(f"\nper visitor: {visitor} B visit state (visit window + 10 min), {retry} B retry state (dedupe_seconds),"
          f" {online:.0f} B online (online window), {rate:.0f} B rate-limit counters (2 min to 2 h)"
          f"\nper path: {page} B\nper day: {day} B day record + 24 x {hour} B hour records + two HyperLogLogs"
          " (<= 12 KB each, dense)")
    assert visitor < 200 and retry < 256 and online < 128 and rate < 400
    assert page < 150
    assert day + 24 * hour < 6_000
