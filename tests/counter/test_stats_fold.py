"""The statistics log and its fold (``counter/stats_fold.py``, real Valkey): the running
service folds what it wrote in the background and whatever an earlier process left at
start; two processes folding one site at once count each record once; a failing fold
restarts, and /readyz names it while it makes no progress."""

from __future__ import annotations

import asyncio
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.keys import digest
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import CounterSettings
from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.dimensions import record_field
from portal_pulse.counter.hit import Hit, Kind
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.state import FOLDER
from portal_pulse.counter.stats_fold import StatisticsFolder
from portal_pulse.counter.store import HitStore
from tests.conftest import T0
from tests.counter.conftest import CounterFactory
from tests.metric_samples import sample
from tests.waiting import eventually

CAL = calendar_keys(T0, ZoneInfo("Asia/Ho_Chi_Minh"))


def pageview(site: str, index: int, page: str) -> Hit:
    dimensions = record_field(page, "(direct)", "", "Firefox\tLinux\tdesktop", "VN", "", 4)
    return Hit(site, Kind.PAGEVIEW, digest(page), digest(f"v{index}"), False, False, T0 + index / 1000,
               CAL.day, CAL.month, CAL.hour, "", "", dimensions=dimensions)


async def pages(client: Redis, site: str) -> dict[bytes, bytes]:
    return cast(dict[bytes, bytes], await client.hgetall(SiteKeys(site).top_counts("day", CAL.day, "pages")))


async def test_the_service_folds_its_log_in_the_background(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, statistics_fold_seconds=0.01)
    for visitor in ("a", "b", "c"):
        assert (await counter.hit(visitor=visitor, path="/news/1")).status == 204
    client = counter.app_redis()

    async def folded() -> bool:
        return not await client.exists(SiteKeys("default").stats_log) and bool(await pages(client, "default"))

    await eventually(folded)
    assert await pages(client, "default") == {b"/news/1": b"3:3:3"}


async def test_a_log_left_by_another_process_is_folded_at_start(
    redis_url: str, redis_client: Redis, start_counter: CounterFactory
) -> None:
    store = HitStore(ScriptRunner(redis_client), CounterSettings(rate_limits_enabled=False))
    await store.commit([pageview("news", index, "/left") for index in range(5)])  # no folder: a process gone
    assert await redis_client.llen(SiteKeys("news").stats_log) == 1
    counter = await start_counter(redis_url)  # folds every configured site once at start
    client = counter.app_redis()

    async def folded() -> bool:
        return not await client.exists(SiteKeys("news").stats_log)

    await eventually(folded)
    assert await pages(client, "news") == {b"/left": b"5:5:5"}


@pytest.mark.parametrize("top_entries", [3, 100])  # with evictions, and without
async def test_two_processes_folding_one_site_count_each_record_once(redis_client: Redis, top_entries: int) -> None:
    settings = CounterSettings(rate_limits_enabled=False, top_entries=top_entries)
    store = HitStore(ScriptRunner(redis_client), settings)
    folders = [StatisticsFolder(redis_client, ScriptRunner(redis_client), store, ("shared", "alone"), top_entries, 1)
               for _ in range(2)]
    hits = [(index, f"/p{index % 17}") for index in range(400)]
    for first in range(0, len(hits), 20):
        batch = hits[first:first + 20]
        for site in ("shared", "alone"):
            await store.commit([pageview(site, index, page) for index, page in batch])
        # the shared site is folded by both "processes" at once, the other by one alone
        await asyncio.gather(folders[0].fold("shared"), folders[1].fold("shared"))
        await folders[0].fold("alone")
    assert await pages(redis_client, "shared") == await pages(redis_client, "alone")
    rows = await pages(redis_client, "shared")
    assert sum(int(value.split(b":")[1]) for value in rows.values()) == len(hits)


class ArrivingRunner(ScriptRunner):
    """A runner before whose fold calls another batch is committed (the first five): hits
    keep arriving while a fold runs, as under load."""

    def __init__(self, client: Redis, store: HitStore) -> None:
        super().__init__(client)
        self.store = store
        self.calls = 0

    async def run(self, script: Any, keys: Any, args: Any, *, write: bool = True) -> Any:
        self.calls += 1
        if self.calls <= 5:
            await self.store.commit([pageview("busy", 1000 + self.calls, "/late")])
        return await super().run(script, keys, args, write=write)


async def test_a_fold_counts_what_the_log_held_when_it_began_not_what_arrives_meanwhile(
    redis_client: Redis,
) -> None:
    settings = CounterSettings(rate_limits_enabled=False)
    store = HitStore(ScriptRunner(redis_client), settings)
    for index in range(3):  # three batches of two
        await store.commit([pageview("busy", 2 * index, "/early"), pageview("busy", 2 * index + 1, "/early")])
    runner = ArrivingRunner(redis_client, store)
    folder = StatisticsFolder(redis_client, runner, store, ("busy",), 100, 1)
    await folder.load_script()
    await folder.fold("busy")
    assert runner.calls == 1  # the three batches fit one call; the arrivals are not chased
    assert await pages(redis_client, "busy") == {b"/early": b"6:6:6"}
    assert await redis_client.llen(SiteKeys("busy").stats_log) == 1  # the arrival, for the next fold


async def test_a_failing_fold_restarts_and_fails_readiness_while_stale(
    valkey_url: str, start_counter: CounterFactory, clock: ManualClock
) -> None:
    counter = await start_counter(valkey_url, statistics_fold_seconds=0.01)
    folder = counter.app[FOLDER]
    real_fold_all = folder.fold_all
    broken = True

    async def fold_all(sites: Any) -> None:
        if broken:
            raise RuntimeError("injected fold fault")
        await real_fold_all(sites)

    folder.fold_all = fold_all  # type: ignore[method-assign]

    async def restarted() -> bool:
        text = await (await counter.client.get("/metrics")).text()
        return sample(text, "pulse_background_restarts_total", task="counter-statistics-fold") >= 2

    await eventually(restarted)
    assert (await counter.client.get("/readyz")).status == 200  # failing, but not stale yet
    clock.advance(31)  # the stale bound: max(30 s, 20 folds)
    response = await counter.client.get("/readyz")
    assert response.status == 503
    assert "counter-statistics-fold" in await response.text()
    broken = False

    async def ready() -> bool:
        return (await counter.client.get("/readyz")).status == 200

    await eventually(ready, within=15)  # the next restart (backoff at most 10 s) succeeds
