"""Stats are cached at most ``stats_cache_seconds`` and concurrent misses share one read.

Reads are observed in the server's own command statistics (one stats read runs two
PFCOUNTs), and time moves only with the service's manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from portal_pulse.core.clock import ManualClock
from portal_pulse.counter.shared_reads import SharedReads
from tests.command_stats import command_calls
from tests.conftest import T0
from tests.counter.conftest import Counter, CounterFactory


async def start(start_counter: CounterFactory, url: str, cache_seconds: float) -> Counter:
    counter = await start_counter(url, stats_cache_seconds=cache_seconds)
    await counter.app_redis().config_resetstat()  # this suite owns the server: count from zero
    return counter


async def stats_reads(counter: Counter) -> int:
    """Stats reads the server has answered so far (each runs PFCOUNT twice)."""
    calls = await command_calls(counter.app_redis(), "pfcount")
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


async def test_series_and_pages_are_shared_between_concurrent_callers(valkey_url: str,
                                                                       start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=1.0)
    redis = counter.app_redis()
    await counter.hit(path="/a")
    # A series read is one EVAL (its buckets) and a page read one HMGET: counted on the
    # server from a baseline taken after the hits (hit.lua runs HMGET too).
    series_reads = await command_calls(redis, "eval")
    spellings = [{"unit": "hour", "from": "2026-11-26T08:00:00", "to": "2026-11-26T17:10:00"},
                 {"unit": "hour", "from": "2026-11-26T08:15:00", "to": "2026-11-26T17:59:59"},
                 {"unit": "hour", "from": "2026-11-26T01:05:00+00:00", "to": "2026-11-26T17:30:00+07:00"}]
    answers = await asyncio.gather(*(
        counter.client.get("/v1/stats/series", params={"site": "default", **spellings[i % 3]}) for i in range(30)))
    bodies = {await a.read() for a in answers}
    assert len(bodies) == 1  # three spellings of one question ...
    assert await command_calls(redis, "eval") == series_reads + 1  # ... one read
    page_reads = await command_calls(redis, "hmget")
    pages = await asyncio.gather(*(counter.client.get("/v1/pages", params={"site": "default", "path": "/a"})
                                   for _ in range(20)))
    assert {(await p.json())["views"] for p in pages} == {1}
    assert await command_calls(redis, "hmget") == page_reads + 1
    await counter.hit(path="/a", visitor="v2")
    page_reads = await command_calls(redis, "hmget")
    page = await counter.client.get("/v1/pages", params={"site": "default", "path": "/a"})
    assert (await page.json())["views"] == 1  # at most a second old: from the cache
    assert await command_calls(redis, "hmget") == page_reads
    counter.clock.advance(1)
    page = await counter.client.get("/v1/pages", params={"site": "default", "path": "/a"})
    assert (await page.json())["views"] == 2
    assert await command_calls(redis, "hmget") == page_reads + 1


async def test_shared_reads_are_bounded_in_entries() -> None:
    reads: SharedReads[bytes] = SharedReads(ManualClock(T0), max_age_seconds=60, max_entries=8)
    loaded: list[int] = []

    def loader(key: int) -> Callable[[], Awaitable[bytes]]:
        async def load() -> bytes:
            loaded.append(key)
            return b"x"

        return load

    for key in range(100):
        await reads.get(key, loader(key))
    assert loaded == list(range(100))
    loaded.clear()
    for key in reversed(range(100)):  # all still fresh by age: only what the bound kept is served
        assert await reads.get(key, loader(key)) == b"x"
    assert 1 <= 100 - len(loaded) <= 8
    assert 99 not in loaded  # the newest stayed
