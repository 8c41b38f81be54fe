"""Write a plan to Redis, replacing what an earlier import wrote (never adding to it), so
a second run changes nothing. The baseline and the top entries are replaced whole; an
imported page view count lives in the page hash as ``legacy_views`` and ``views`` moves
by the difference, so views counted live on that path are kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from portal_pulse.counter.baseline import replace_baseline
from portal_pulse.counter.keys import (
    BASELINE_DAY,
    BASELINE_MONTH,
    BASELINE_PAGEVIEWS_TOTAL,
    BASELINE_TOTAL,
    LEGACY_TOP_DIMENSIONS,
    PAGE_LEGACY_VIEWS,
    SiteKeys,
)
from portal_pulse.counter.visitor import path_digest
from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.plan import Plan

PAGE_CHUNK = 500

# KEYS[1] the index of imported pages, KEYS[i>1] page hashes; ARGV[1] the legacy field,
# then (digest, imported views) per page hash. Returns how many pages changed.
SET_LEGACY_VIEWS = """
local F = ARGV[1]
local changed = 0
for i = 2, #KEYS do
  local key, digest, new = KEYS[i], ARGV[2 * i - 2], tonumber(ARGV[2 * i - 1])
  local old = tonumber(redis.call('HGET', key, F) or '0')
  if new ~= old then
    changed = changed + 1
    local views = redis.call('HINCRBY', key, 'views', new - old)
    if new > 0 then
      redis.call('HSET', key, F, new)
    else
      redis.call('HDEL', key, F)
      if views == 0 and redis.call('HLEN', key) == 1 then redis.call('DEL', key) end
    end
  end
  if new > 0 then redis.call('SADD', KEYS[1], digest) else redis.call('SREM', KEYS[1], digest) end
end
return changed
"""


@dataclass
class Written:
    baseline_changed: bool = False
    tops_changed: list[str] = field(default_factory=list)
    pages_changed: int = 0
    pages_removed: int = 0


async def live_visits(client: Redis, site: str) -> int:
    value = await client.hget(SiteKeys(site).totals, "visits")
    return int(value or 0)


def _baseline_fields(plan: Plan) -> dict[str, str]:
    fields = {BASELINE_TOTAL: plan.baseline.total, BASELINE_PAGEVIEWS_TOTAL: plan.baseline.pageviews_total}
    fields.update({BASELINE_MONTH + k: v for k, v in plan.baseline.months.items()})
    fields.update({BASELINE_DAY + k: v for k, v in plan.baseline.days.items()})
    return {k: str(v) for k, v in fields.items()}


def _decoded(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def write_plan(client: Redis, site: str, plan: Plan, force: bool) -> Written:
    keys = SiteKeys(site)
    visits = await live_visits(client, site)
    if visits and not force:
        raise ImportFailure(
            f"site {site!r} has already counted {visits:,} visits live: importing now would put the legacy figures "
            "on top of live counting; nothing was written (use --force to import anyway)")
    written = Written()
    if _decoded(await client.hgetall(keys.baseline)) != _baseline_fields(plan):
        await replace_baseline(client, site, plan.baseline)
        written.baseline_changed = True
    for dimension in LEGACY_TOP_DIMENSIONS:
        wanted = {k: str(v) for k, v in plan.tops.get(dimension, {}).items()}
        key = keys.legacy_top(dimension)
        if _decoded(await client.hgetall(key)) == wanted:
            continue
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if wanted:
                pipe.hset(key, mapping=wanted)  # type: ignore[arg-type]
            await pipe.execute()
        written.tops_changed.append(dimension)
    await _write_pages(client, keys, plan, written)
    return written


async def _write_pages(client: Redis, keys: SiteKeys, plan: Plan, written: Written) -> None:
    new = {path_digest(path): views for path, views in plan.pages.items()}
    old = {_text(m) for m in await client.smembers(keys.legacy_pages)}
    removed = sorted(old - new.keys())
    written.pages_removed = len(removed)
    items = [*sorted(new.items()), *((digest, 0) for digest in removed)]
    for start in range(0, len(items), PAGE_CHUNK):
        chunk = items[start:start + PAGE_CHUNK]
        args: list[str] = [PAGE_LEGACY_VIEWS]
        for digest, views in chunk:
            args += [digest, str(views)]
        page_keys = [keys.page(digest) for digest, _ in chunk]
        changed = await client.eval(SET_LEGACY_VIEWS, 1 + len(chunk), keys.legacy_pages, *page_keys, *args)
        written.pages_changed += int(changed)
