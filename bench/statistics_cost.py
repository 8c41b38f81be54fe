"""``python -m bench.statistics_cost``: what the statistics dimensions cost, measured
alone (one process, one embedded Valkey, ~1 minute; not part of ``python -m bench``).

- Python CPU per hit of the ``enrich_dimensions`` step (timeit over a realistic mix:
  a few dozen User-Agents, so the parse cache holds them; varied paths and referrers).
- Valkey CPU per hit of ``hit.lua`` (and, with dimensions, of ``stats_fold.lua``, which
  counts the statistics log every few batches): the same synthetic day of hits
  committed in batches, ``INFO commandstats`` EVALSHA microseconds divided by the hits.
- Bytes per day and per month per site of the statistics keys (``MEMORY USAGE``) after
  that day.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import timeit
from pathlib import Path

from aiohttp.test_utils import make_mocked_request
from redis.asyncio import Redis

from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import CounterSettings, Settings, SiteSettings
from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.enrich import DimensionEnricher
from portal_pulse.counter.hit import Hit, Kind
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.pipeline import HitContext, ParsedHit
from portal_pulse.counter.stats_fold import StatisticsFolder
from portal_pulse.counter.store import HitStore
from portal_pulse.counter.visitor import path_digest, visitor_from_id

DAY_START = 1795626000.0  # 2026-11-26 00:00 in Asia/Ho_Chi_Minh
VISITORS = 10_000
PAGEVIEWS_PER_VISIT = 3
BATCH = 100
#: Batches between two folds of the statistics log: about a fold interval (0.25 s) of a
#: busy site's hits.
FOLD_EVERY = 10
SITE = SiteSettings("default", "Asia/Ho_Chi_Minh", ("https://portal.gov.vn",))
BROWSERS = [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/13{n}.0.0.0 "
            "Safari/537.36" for n in range(10)] + [
    f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_{n} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1" for n in range(10)] + [
    f"Mozilla/5.0 (Linux; Android 14; SM-A5{n}5F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
    "Safari/537.36" for n in range(10)]
REFERRERS = [None, None, "https://www.google.com/", "https://www.facebook.com/", "https://zalo.me/",
             "https://portal.gov.vn/tin-tuc"] + [f"https://site{n}.vn/" for n in range(300)]
ADDRESSES = ["14.160.0.1", "113.160.0.1", "27.64.0.1", "8.8.8.8", "1.1.1.1", "203.113.0.1"]


def contexts(count: int, rng: random.Random) -> list[HitContext]:
    found = []
    for index in range(count):
        request = make_mocked_request("POST", "/v1/hit", headers={"User-Agent": rng.choice(BROWSERS)})
        campaign = "?utm_source=zalo&utm_campaign=tet" if index % 20 == 0 else None
        parsed = ParsedHit(SITE, Kind.PAGEVIEW, f"/tin-tuc/{rng.randrange(2000)}", f"v{index}", False,
                           rng.choice(REFERRERS), None, campaign)
        now = DAY_START + index * 86400 / count
        ctx = HitContext(parsed, request, now, calendar_keys(now, SITE.zone))
        ctx.client_ip = rng.choice(ADDRESSES)
        found.append(ctx)
    return found


def python_cost() -> float:
    """Microseconds of Python per hit for ``enrich_dimensions`` (best of 5)."""
    enricher = DimensionEnricher(Settings(sites=(SITE,)))
    sample = contexts(5000, random.Random(1))
    for ctx in sample:  # warm the User-Agent cache, as a running service has it
        enricher.field(ctx)

    def run() -> None:
        for ctx in sample:
            ctx.dimensions = enricher.field(ctx)

    return min(timeit.repeat(run, number=1, repeat=5)) / len(sample) * 1e6


def day_of_hits(with_dimensions: bool) -> list[Hit]:
    rng = random.Random(2)
    enricher = DimensionEnricher(Settings(sites=(SITE,)))
    hits = []
    for ctx in contexts(VISITORS, rng):
        for step in range(PAGEVIEWS_PER_VISIT):
            now = ctx.now + step * 60
            if step:
                ctx.parsed.path = f"/tin-tuc/{rng.randrange(2000)}"
                ctx.parsed.referrer = "https://portal.gov.vn/"
            cal = calendar_keys(now, SITE.zone)
            hits.append(Hit(SITE.name, Kind.PAGEVIEW, path_digest(ctx.parsed.path),
                            visitor_from_id(SITE.name, ctx.parsed.visitor or ""), False, False, now, cal.day,
                            cal.month, cal.hour, "", "",
                            dimensions=enricher.field(ctx) if with_dimensions else ""))
    hits.sort(key=lambda hit: hit.now)
    return hits


async def valkey_cost(server: EmbeddedServer, with_dimensions: bool) -> tuple[float, dict[str, int]]:
    client = Redis(host=server.host, port=server.port)
    try:
        await client.flushall()
        settings = CounterSettings(rate_limits_enabled=False)
        store = HitStore(ScriptRunner(client), settings)
        folder = StatisticsFolder(client, ScriptRunner(client), store, (SITE.name,), settings.top_entries, 1)
        await store.load_script()
        await folder.load_script()
        hits = day_of_hits(with_dimensions)
        await client.config_resetstat()
        for number, first in enumerate(range(0, len(hits), BATCH), start=1):
            await store.commit(hits[first:first + BATCH])
            if number % FOLD_EVERY == 0:
                await folder.fold(SITE.name)
        await folder.fold(SITE.name)
        stats = await client.info("commandstats")
        usec = float(stats["cmdstat_evalsha"]["usec"])  # hit.lua and stats_fold.lua
        keys = SiteKeys(SITE.name)
        sizes = {"day": 0, "month": 0}
        async for key in client.scan_iter(match=f"{keys.prefix}top:*", count=1000):
            unit = key.decode().split(":")[3]
            sizes[unit] += int(await client.memory_usage(key, samples=0) or 0)
        sizes["month"] += int(await client.memory_usage(keys.profile_month("2026-11"), samples=0) or 0)
        sizes["day"] += int(await client.memory_usage(keys.profile_day("2026-11-26"), samples=0) or 0)
        return usec / len(hits), sizes
    finally:
        await client.aclose()


async def main() -> None:
    print(f"enrich_dimensions: {python_cost():.2f} µs of Python per hit")
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedServer(Path(folder), appendonly=False).start()
        try:
            without, _ = await valkey_cost(server, with_dimensions=False)
            with_dims, sizes = await valkey_cost(server, with_dimensions=True)
        finally:
            server.stop()
    hits = VISITORS * PAGEVIEWS_PER_VISIT
    print(f"hit.lua, batches of {BATCH}, and stats_fold.lua every {FOLD_EVERY} batches,"
          f" {hits} pageviews of {VISITORS} visits over one day:")
    print(f"  Valkey CPU per hit: {without:.1f} µs without dimensions, {with_dims:.1f} µs with"
          f" (+{with_dims - without:.1f} µs)")
    print(f"  statistics keys: {sizes['day']} bytes for the day, {sizes['month']} bytes for the month so far")


if __name__ == "__main__":
    asyncio.run(main())
