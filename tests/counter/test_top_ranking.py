"""Top N per day/month and dimension by Space-Saving (stats_fold.lua, from the log
hit.lua appends), through HitStore and StatisticsFolder against a real server: hits
count as a reference model of the algorithm says, committed and folded one by one, in
batches folded at once, or in batches folded one at a time alike (evictions inside a
fold carry the evicted key's pending counts to ``(other)``); the rows, ``(other)``
included, add up to the day's visits and pageviews; the ranking never lists more than
``top_entries`` keys."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from portal_pulse.core.keys import digest
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import CounterSettings
from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.dimensions import DIMENSIONS, record_field
from portal_pulse.counter.hit import Hit, Kind
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.stats_fold import StatisticsFolder
from portal_pulse.counter.store import HitStore
from portal_pulse.counter.top import top_row

NOW = 1795660000.0  # 2026-11-26, 09:26 in Asia/Ho_Chi_Minh
CAL = calendar_keys(NOW, ZoneInfo("Asia/Ho_Chi_Minh"))
BUCKETS = (("day", CAL.day), ("month", CAL.month))


@dataclass(frozen=True)
class Sent:
    """One pageview: its visitor (a visit starts at the visitor's first hit), page,
    referrer and browser; a bot's pageview counts in ``bots`` only."""

    visitor: str
    page: str
    referrer: str
    browser: str
    bot: str = ""


def hit(site: str, index: int, sent: Sent) -> Hit:
    client = f"{sent.browser}\tLinux\tdesktop"
    dimensions = record_field(sent.page, sent.referrer, "", client, "VN", sent.bot, 4)
    return Hit(site, Kind.PAGEVIEW, digest(sent.page), digest(sent.visitor), False, bool(sent.bot),
               NOW + index / 1000, CAL.day, CAL.month, CAL.hour, "", "", dimensions=dimensions)


@dataclass
class Model:
    """Space-Saving as SPEC'd in hit.lua: ``listed`` key -> [estimate, visits, pageviews]."""

    size: int
    listed: dict[str, list[int]] = field(default_factory=dict)
    other: list[int] = field(default_factory=lambda: [0, 0])

    def count(self, key: str, visits: int, pageviews: int, weight: int) -> None:
        if key not in self.listed:
            floor = 0
            if len(self.listed) >= self.size:
                if weight == 0:
                    self.other[0] += visits
                    self.other[1] += pageviews
                    return
                lowest = min(self.listed, key=lambda name: (self.listed[name][0], name))
                floor, gone_visits, gone_pageviews = self.listed.pop(lowest)
                self.other[0] += gone_visits
                self.other[1] += gone_pageviews
            self.listed[key] = [floor, 0, 0]
        row = self.listed[key]
        row[0] += weight
        row[1] += visits
        row[2] += pageviews

    def stored(self) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
        visits = {key: row[1] for key, row in self.listed.items() if row[1]}
        pageviews = {key: row[2] for key, row in self.listed.items() if row[2]}
        if self.other[0]:
            visits["(other)"] = self.other[0]
        if self.other[1]:
            pageviews["(other)"] = self.other[1]
        return visits, pageviews, {key: float(row[0]) for key, row in self.listed.items()}


def expected(sent: list[Sent], size: int) -> dict[str, Model]:
    models = {dimension: Model(size) for dimension in ("pages", "referrers", "browsers", "bots")}
    seen: set[str] = set()
    for one in sent:
        if one.bot:
            models["bots"].count(one.bot, 0, 1, 1)
            continue
        visit = int(one.visitor not in seen)
        seen.add(one.visitor)
        models["pages"].count(one.page, visit, 1, visit)
        models["referrers"].count(one.referrer, visit, 1, visit)
        models["browsers"].count(one.browser, visit, 1, visit)
    return models


def traffic(count: int, seed: int, tail: float) -> list[Sent]:
    """Skewed pages (exponential, mean ``tail``) and referrers (a few popular, a long
    tail), returning visitors, bots."""
    rng = random.Random(seed)
    sent = []
    for index in range(count):
        visitor = f"v{rng.randrange(count // 3)}"
        page = f"/p{min(int(rng.expovariate(1 / tail)), 10 * int(tail))}"
        referrer = rng.choice(["google.com", "google.com", "(direct)", f"r{rng.randrange(30)}.example"])
        bot = rng.choice(["Googlebot", "bingbot", f"crawler{rng.randrange(9)}"]) if index % 7 == 0 else ""
        sent.append(Sent(visitor, page, referrer, rng.choice(["Chrome", "Firefox", "Edge", "Opera", "Safari"]), bot))
    return sent


async def stored(client: Redis, site: str, dimension: str, unit: str, bucket: str
                 ) -> tuple[dict[str, int], dict[str, int], dict[str, float], dict[str, float]]:
    """The bucket's visits and pageviews (rows of 0 left out), the scores its rows carry,
    and its ranking (kept once the bucket overflowed: then the same scores)."""
    keys = SiteKeys(site)
    rows = cast(dict[bytes, bytes], await client.hgetall(keys.top_counts(unit, bucket, dimension)))
    ranking = await client.zrange(keys.top_rank(unit, bucket, dimension), 0, -1, withscores=True)
    visits: dict[str, int] = {}
    pageviews: dict[str, int] = {}
    for name, value in rows.items():
        counts = top_row(value)
        assert counts is not None, value
        visits[name.decode()], pageviews[name.decode()] = counts
    scores = {key.decode(): float(value.split(b":")[2]) for key, value in rows.items() if key != b"(other)"}
    return ({key: count for key, count in visits.items() if count},
            {key: count for key, count in pageviews.items() if count}, scores,
            {key.decode(): float(score) for key, score in cast(list[tuple[bytes, float]], ranking)})


# a small list (every batch reads it whole), and a longer one with many more pages, so that
# batches also evict stored keys they never looked at and read only the lowest ranks
@pytest.mark.parametrize(("size", "tail"), [(4, 4.0), (24, 40.0)])
async def test_one_by_one_and_in_batches_as_the_model_says(redis_client: Redis, size: int, tail: float) -> None:
    store = HitStore(ScriptRunner(redis_client), CounterSettings(rate_limits_enabled=False, top_entries=size))
    folder = StatisticsFolder(redis_client, ScriptRunner(redis_client), store, ("alone", "batched", "folded"), size, 1)
    await folder.load_script()
    sent = traffic(600, seed=3, tail=tail)
    for index, one in enumerate(sent):
        await store.commit([hit("alone", index, one)])
        await folder.fold("alone")
    # batches of every size, so that keys evicted, re-admitted and evicted again within one
    # fold, and keys stored by an earlier fold, all occur: folded all at once ("batched",
    # 600 records in one call) and after each batch ("folded")
    first = 0
    for batch in (1, 2, 50, 3, 200, 7, 337):
        for site in ("batched", "folded"):
            await store.commit([hit(site, first + index, one) for index, one in enumerate(sent[first:first + batch])])
        await folder.fold("folded")
        first += batch
    assert first == len(sent)
    await folder.fold("batched")
    assert not await redis_client.exists(SiteKeys("batched").stats_log)  # all counted, and trimmed
    models = expected(sent, size)
    assert all(models[dimension].other[0] > 0 for dimension in ("pages", "referrers"))  # evictions occur
    for site in ("alone", "batched", "folded"):
        keys = SiteKeys(site)
        for unit, bucket in BUCKETS:
            figures = await redis_client.hgetall(keys.day(CAL.day) if unit == "day" else keys.month(CAL.month))
            for dimension, model in models.items():
                visits, pageviews, scores, ranking = await stored(redis_client, site, dimension, unit, bucket)
                assert (visits, pageviews, scores) == model.stored(), (site, unit, dimension)
                assert ranking == (scores if model.other != [0, 0] else {}), (site, unit, dimension)
                assert len(scores) <= size
                if dimension != "bots":  # every pageview has a page, a referrer and a browser here
                    assert sum(visits.values()) == int(figures[b"visits"])
                    assert sum(pageviews.values()) == int(figures[b"pageviews"])
                else:
                    assert sum(pageviews.values()) == int(figures[b"bot_hits"])


async def test_every_dimension_keeps_its_bound(redis_client: Redis) -> None:
    store = HitStore(ScriptRunner(redis_client), CounterSettings(rate_limits_enabled=False, top_entries=3))
    folder = StatisticsFolder(redis_client, ScriptRunner(redis_client), store, ("default",), 3, 1)
    sent = [Sent(f"v{index}", f"/junk/{index}", f"junk{index}.example", f"B{index}", "") for index in range(500)]
    await store.commit([hit("default", index, one) for index, one in enumerate(sent[:250])])
    await folder.fold("default")
    for index, one in enumerate(sent[250:]):
        await store.commit([hit("default", index, one)])
        await folder.fold("default")
    keys = SiteKeys("default")
    for unit, bucket in BUCKETS:
        for dimension in DIMENSIONS:
            if dimension in ("campaigns", "bots"):
                continue
            assert await redis_client.zcard(keys.top_rank(unit, bucket, dimension)) <= 3, dimension
            assert await redis_client.hlen(keys.top_counts(unit, bucket, dimension)) <= 4, dimension
