"""The stats object of one site: read in one pipelined round trip, served from a per-site
cache of at most ``stats_cache_seconds``, with single flight (concurrent misses share one
Redis read)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from redis.asyncio import Redis

from services.core.clock import Clock
from services.core.settings import SiteSettings
from services.counter.calendar_keys import calendar_keys, last_month_key, local_time
from services.counter.keys import BASELINE_MONTH, BASELINE_PAGEVIEWS_TOTAL, BASELINE_TOTAL, SiteKeys

Stats = dict[str, Any]
_encode = msgspec.json.Encoder().encode


def _int(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray):
        return int(value)
    return int(str(value))


def parse_baseline(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {key.decode(): int(value) for key, value in raw.items()}


async def read_stats(client: Redis, site: SiteSettings, now: float, online_window_seconds: int) -> Stats:
    keys = SiteKeys(site.name)
    cal = calendar_keys(now, site.zone)
    last_month = last_month_key(now, site.zone)
    cutoff = f"({int((now - online_window_seconds) * 1000)}"
    async with client.pipeline(transaction=False) as pipe:
        for audience in ("members", "guests", "bots"):
            pipe.zcount(keys.online(audience), cutoff, "+inf")
        pipe.hmget(keys.day(cal.day), ["visits", "pageviews"])
        pipe.hmget(keys.month(cal.month), ["visits", "pageviews"])
        pipe.hmget(keys.month(last_month), ["visits", "pageviews"])
        pipe.hmget(keys.totals, ["visits", "pageviews"])
        pipe.hgetall(keys.baseline)
        # PFCOUNT through execute_command: redis-py refuses pipe.pfcount() on a Redis
        # Cluster (it may span keys); one key in the site's slot is always allowed.
        pipe.execute_command("PFCOUNT", keys.visitors_day(cal.day))
        pipe.execute_command("PFCOUNT", keys.visitors_month(cal.month))
        (members, guests, bots, day, month, previous, totals, raw_baseline, uv_day, uv_month) = await pipe.execute()
    baseline = parse_baseline(raw_baseline)
    this_month_base = baseline.get(BASELINE_MONTH + cal.month, 0)
    last_month_base = baseline.get(BASELINE_MONTH + last_month, 0)
    return {
        "site": site.name,
        "timezone": site.timezone,
        "as_of": local_time(now, site.zone).isoformat(timespec="seconds"),
        "online": _int(members) + _int(guests),
        "today": _int(day[0]),
        "this_month": _int(month[0]) + this_month_base,
        "last_month": _int(previous[0]) + last_month_base,
        "total": _int(totals[0]) + baseline.get(BASELINE_TOTAL, 0),
        "online_breakdown": {"members": _int(members), "guests": _int(guests), "bots": _int(bots)},
        "pageviews": {
            "today": _int(day[1]),
            "this_month": _int(month[1]),
            "last_month": _int(previous[1]),
            "total": _int(totals[1]) + baseline.get(BASELINE_PAGEVIEWS_TOTAL, 0),
        },
        "visitors": {"today": _int(uv_day), "this_month": _int(uv_month)},
    }


class StatsCache:
    """Per-site stats, at most ``max_age_seconds`` old (0 disables caching, not single flight).

    Each entry keeps the stats and their JSON encoding, so a cache hit of ``/v1/stats``
    sends stored bytes: no dict, no encoding per request.
    """

    def __init__(self, client: Redis, clock: Clock, max_age_seconds: float, online_window_seconds: int) -> None:
        self._client = client
        self._clock = clock
        self._max_age = max_age_seconds
        self._online_window = online_window_seconds
        self._entries: dict[str, tuple[float, Stats, bytes]] = {}
        self._inflight: dict[str, asyncio.Task[tuple[Stats, bytes]]] = {}

    def fresh(self, site: str) -> tuple[Stats, bytes] | None:
        """The cached stats of ``site`` and their JSON, if still within the cache period."""
        entry = self._entries.get(site)
        if entry is None:
            return None
        loaded_at, stats, body = entry
        # abs(): a wall clock stepped back must not keep an entry beyond its age either
        if abs(self._clock.now() - loaded_at) < self._max_age:
            return stats, body
        return None

    async def get_body(self, site: SiteSettings) -> bytes:
        """The stats as JSON bytes."""
        return (await self.get_with_body(site))[1]

    async def get_with_body(self, site: SiteSettings) -> tuple[Stats, bytes]:
        cached = self.fresh(site.name)
        if cached is not None:
            return cached
        task = self._inflight.get(site.name)
        if task is None:
            task = asyncio.create_task(self._load(site))
            self._inflight[site.name] = task
            task.add_done_callback(lambda _: self._inflight.pop(site.name, None))
        return await asyncio.shield(task)

    async def _load(self, site: SiteSettings) -> tuple[Stats, bytes]:
        now = self._clock.now()
        stats = await read_stats(self._client, site, now, self._online_window)
        body = _encode(stats)
        self._entries[site.name] = (now, stats, body)
        return stats, body

    def forget(self, site: str) -> None:
        """Drop a cached entry (after the baseline changed)."""
        self._entries.pop(site, None)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
