"""The 1,000,000-visitors-online run: bulk-load distinct visitors through the counter's
own store (``HitStore.commit``, large batches, a few in flight), then read the Redis
memory of the online window and time ``/v1/stats`` past its cache period."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis
from redis.asyncio import Redis

from bench import probes
from portal_pulse.core.keys import digest
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import CounterSettings, SiteSettings
from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.hit import Hit, Kind
from portal_pulse.counter.store import HitStore


@dataclass(frozen=True)
class OnlineResult:
    visitors: int
    load_seconds: float
    memory_per_visitor_bytes: float
    online_window_bytes: int
    online_reported: int
    stats_ms: list[float]


async def _load(redis_url: str, visitors: int, batch: int, in_flight: int, run: str) -> None:
    client = Redis.from_url(redis_url, max_connections=in_flight + 2)
    store = HitStore(ScriptRunner(client), CounterSettings(rate_limits_enabled=False))
    site = SiteSettings()
    gate = asyncio.Semaphore(in_flight)
    path = digest("/")

    async def commit(start: int) -> None:
        async with gate:
            now = time.time()
            cal = calendar_keys(now, site.zone)
            hits = [
                Hit(site=site.name, kind=Kind.PAGEVIEW, path_digest=path,
                    visitor_digest=digest(f"{run}-{n}"), member=False, bot=False, now=now,
                    day=cal.day, month=cal.month, hour=cal.hour, event_digest="", ip_digest="")
                for n in range(start, min(start + batch, visitors))
            ]
            results = await store.commit(hits)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise RuntimeError(f"bulk commit failed: {failed[0]!r}")

    try:
        await asyncio.gather(*(commit(start) for start in range(0, visitors, batch)))
    finally:
        await client.aclose()


def online_million(redis_url: str, client: redis.Redis, stats_url: str, visitors: int,
                   stats_cache_seconds: float, run: str) -> OnlineResult:
    before = probes.used_memory(client)
    started = time.monotonic()
    asyncio.run(_load(redis_url, visitors, batch=2000, in_flight=4, run=run))
    load_seconds = time.monotonic() - started
    after = probes.used_memory(client)
    window = int(client.memory_usage("pulse:{default}:online:guests", samples=0) or 0)
    timings: list[float] = []
    online = 0
    for _ in range(5):
        time.sleep(stats_cache_seconds + 0.05)  # past the cache: each read goes to Redis
        t0 = time.perf_counter()
        stats = probes.http_json(stats_url)
        timings.append((time.perf_counter() - t0) * 1000)
        online = int(stats["online"])
    return OnlineResult(visitors, load_seconds, (after - before) / visitors, window, online, timings)
