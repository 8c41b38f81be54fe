"""The stats object of one site: read in one pipelined round trip, served from a per-site
cache of at most ``stats_cache_seconds``, with single flight (concurrent misses share one
Redis read), by the same ``SharedReads`` as series and pages."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from portal_pulse.core.clock import Clock
from portal_pulse.core.settings import SiteSettings
from portal_pulse.counter.calendar_keys import calendar_keys, last_month_key, local_time
from portal_pulse.counter.keys import BASELINE_DAY, BASELINE_MONTH, BASELINE_PAGEVIEWS_TOTAL, BASELINE_TOTAL, SiteKeys
from portal_pulse.counter.shared_reads import SharedReads

Stats = dict[str, Any]
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


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
        "today": _int(day[0]) + baseline.get(BASELINE_DAY + cal.day, 0),
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
    """Per-site stats as JSON, at most ``max_age_seconds`` old (0 disables caching, not
    single flight): ``SharedReads`` keyed by site, so a cache hit of ``/v1/stats`` sends
    stored bytes: no dict, no encoding per request."""

    def __init__(self, client: Redis, clock: Clock, max_age_seconds: float, online_window_seconds: int) -> None:
        self._client = client
        self._clock = clock
        self._online_window = online_window_seconds
        self._reads: SharedReads[bytes] = SharedReads(clock, max_age_seconds)

    def fresh(self, site: str) -> bytes | None:
        """The cached stats of ``site`` as JSON, if still within the cache period."""
        return self._reads.fresh(site)

    async def get_body(self, site: SiteSettings) -> bytes:
        async def load() -> bytes:
            return _encode(await read_stats(self._client, site, self._clock.now(), self._online_window))

        return await self._reads.get(site.name, load)

    async def get(self, site: SiteSettings) -> dict[str, Any]:
        """The stats as a dict, for the pages that render them (badge, /stats): decoded from
        the one cached JSON, so every reader shows the same figures."""
        decoded: dict[str, Any] = _decode(await self.get_body(site))
        return decoded

    def forget(self, site: str) -> None:
        """Drop a cached entry (after the baseline changed)."""
        self._reads.forget(site)

    async def close(self) -> None:
        await self._reads.close()
