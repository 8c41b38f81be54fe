"""Stats are cached at most ``stats_cache_seconds`` and concurrent misses share one read."""

from __future__ import annotations

import asyncio

from services.counter.state import STATS
from tests.counter.conftest import CounterFactory


async def test_concurrent_misses_do_one_redis_read(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=1.0)
    cache = counter.app[STATS]
    results = await asyncio.gather(*(counter.stats() for _ in range(40)))
    assert cache.loads == 1
    assert all(r == results[0] for r in results)


async def test_single_flight_even_without_caching(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=0)
    cache = counter.app[STATS]
    await asyncio.gather(*(counter.stats() for _ in range(20)))
    assert cache.loads < 20


async def test_cache_is_at_most_a_second_old(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=1.0)
    cache = counter.app[STATS]
    assert (await counter.stats())["total"] == 0
    await counter.hit()
    assert (await counter.stats())["total"] == 0  # served from the cache
    assert cache.loads == 1
    counter.clock.advance(1)  # the service's clock moved a second: the entry is too old
    assert (await counter.stats())["total"] == 1
    assert cache.loads == 2


async def test_cache_expires_in_real_time_too(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=0.05)
    await counter.stats()
    await counter.hit()
    await asyncio.sleep(0.06)
    assert (await counter.stats())["total"] == 1


async def test_stats_response_headers(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url)
    response = await counter.client.get("/v1/stats", params={"site": "default"})
    assert response.headers["Cache-Control"] == "public, max-age=1"
    assert response.content_type == "application/json"
    assert set(await response.json()) == {
        "site", "timezone", "as_of", "online", "today", "this_month", "last_month", "total",
        "online_breakdown", "pageviews", "visitors"}
