"""Stats are cached at most ``stats_cache_seconds`` and concurrent misses share one read.

Reads are observed in the server's own command statistics (one stats read runs two
PFCOUNTs), and time moves only with the service's manual clock."""

from __future__ import annotations

import asyncio

from tests.counter.conftest import Counter, CounterFactory


async def start(start_counter: CounterFactory, url: str, cache_seconds: float) -> Counter:
    counter = await start_counter(url, stats_cache_seconds=cache_seconds)
    await counter.app_redis().config_resetstat()  # this suite owns the server: count from zero
    return counter


async def stats_reads(counter: Counter) -> int:
    """Stats reads the server has answered so far (each runs PFCOUNT twice)."""
    stats = await counter.app_redis().info("commandstats")
    calls = int(stats.get("cmdstat_pfcount", {}).get("calls", 0))
    assert calls % 2 == 0
    return calls // 2


async def test_concurrent_misses_do_one_redis_read(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start(start_counter, valkey_url, 1.0)
    results = await asyncio.gather(*(counter.stats() for _ in range(40)))
    assert await stats_reads(counter) == 1
    assert all(r == results[0] for r in results)


async def test_single_flight_even_without_caching(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start(start_counter, valkey_url, 0)
    await asyncio.gather(*(counter.stats() for _ in range(20)))
    assert 1 <= await stats_reads(counter) < 20
    await counter.stats()  # nothing cached: a later read goes to Redis again
    assert await stats_reads(counter) >= 2


async def test_cache_is_at_most_a_second_old(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start(start_counter, valkey_url, 1.0)
    assert (await counter.stats())["total"] == 0
    await counter.hit()
    counter.clock.advance(0.9)
    assert (await counter.stats())["total"] == 0  # served from the cache
    assert await stats_reads(counter) == 1
    counter.clock.advance(0.1)  # the service's clock moved a second: the entry is too old
    assert (await counter.stats())["total"] == 1
    assert await stats_reads(counter) == 2


async def test_a_clock_stepped_back_expires_the_cache(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start(start_counter, valkey_url, 1.0)
    await counter.stats()
    await counter.hit()
    counter.clock.advance(-5)  # NTP stepped the wall clock back: an entry "from the future" is not served
    assert (await counter.stats())["total"] == 1
    assert await stats_reads(counter) == 2


async def test_stats_response_headers(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url)
    response = await counter.client.get("/v1/stats", params={"site": "default"})
    assert response.headers["Cache-Control"] == "public, max-age=1"
    assert response.content_type == "application/json"
    assert set(await response.json()) == {
        "site", "timezone", "as_of", "online", "today", "this_month", "last_month", "total",
        "online_breakdown", "pageviews", "visitors"}
