"""``HitStore``: one ``hit.lua`` call per site of a batch, a failing site's error for its
own hits only, and the online window's cleanup at most once a second per site (by the
hits' clock). Real Valkey or Redis; the online sets are read from the server."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import CounterSettings
from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.hit import CommitResult, Hit, Kind, Outcome
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.store import HitStore
from portal_pulse.counter.visitor import path_digest, visitor_from_id
from tests.conftest import T0
from tests.counter.conftest import Counter


def hit(site: str, visitor: str, now: float = T0, path: str = "/", kind: Kind = Kind.PAGEVIEW) -> Hit:
    cal = calendar_keys(now, ZoneInfo("UTC"))
    return Hit(site=site, kind=kind, path_digest=path_digest(path),
               visitor_digest=visitor_from_id(site, visitor), member=False, bot=False, now=now,
               day=cal.day, month=cal.month, hour=cal.hour, event_digest="", ip_digest="")


async def test_a_failing_site_fails_only_its_own_hits(redis_client: Redis) -> None:
    await redis_client.set(SiteKeys("broken").totals, "not a hash")  # every call for it fails: WRONGTYPE
    store = HitStore(ScriptRunner(redis_client), CounterSettings())
    results = await store.commit([hit("broken", "a"), hit("fine", "a"), hit("broken", "b"), hit("fine", "b")])
    assert [type(result) for result in results] == [ResponseError, CommitResult, ResponseError, CommitResult]
    assert results[1] == CommitResult(Outcome.COUNTED, new_visit=True)
    assert await redis_client.hget(SiteKeys("fine").totals, "visits") == b"2"


async def online(counter: Counter, site: str = "default") -> int:
    return int(await counter.app_redis().zcard(SiteKeys(site).online("guests")))


async def test_the_online_window_is_cleaned_at_most_once_a_second_per_site(counter: Counter) -> None:
    window = counter.settings.counter.online_window_seconds
    news: dict[str, Any] = {"site": "news", "headers": {"Origin": "http://news.test"}}
    await counter.hit(visitor="a")  # T0: the site's first commit cleans up
    await counter.hit(visitor="n1", **news)
    counter.clock.advance(0.75)
    await counter.hit(visitor="e")
    counter.clock.set(T0 + window - 0.5)
    await counter.hit(visitor="b")  # cleans up; nothing has left the window yet
    assert await online(counter) == 3
    counter.clock.advance(1.0)  # a second after the last cleanup: "a" has left the window
    await counter.hit(visitor="c")
    assert await online(counter) == 3  # e, b, c
    counter.clock.advance(0.5)  # half a second later: "e" has left the window too, but
    await counter.hit(visitor="d")  # the cleanup waits for the next second
    assert await online(counter) == 4
    # ... per site: the news site was last cleaned at T0, so its commit now cleans.
    await counter.hit(visitor="n2", **news)
    assert await online(counter, "news") == 1
    assert (await counter.stats())["online"] == 3  # reads count by score, cleaned up or not


async def test_a_visitor_s_state_is_kept_for_the_longer_window_and_ten_minutes(counter: Counter) -> None:
    """Long enough to recognise the visitor's next hit in the visit window, then gone."""
    settings = counter.settings.counter
    await counter.hit(visitor="kept")
    ttl_ms = await counter.app_redis().pttl(SiteKeys("default").visitor(visitor_from_id("default", "kept")))
    expected_ms = (max(settings.visit_window_seconds, settings.online_window_seconds) + 600) * 1000
    assert expected_ms - 5_000 < ttl_ms <= expected_ms  # the server's clock ran a little since



async def test_one_batch_counts_each_path_once_per_visit(redis_client: Redis) -> None:
    """Within one commit a new visitor's paths are decided by the script alone (its hash
    is known to be empty) and written with 'last' at the end: the same as hit by hit."""
    store = HitStore(ScriptRunner(redis_client), CounterSettings())
    keys = SiteKeys("default")
    later = T0 + CounterSettings().visit_window_seconds + 1  # a new visit of the same visitor
    batch = [hit("default", "new", path="/a"), hit("default", "new", path="/a"), hit("default", "new", path="/b"),
             hit("default", "new", path="/a", kind=Kind.DOWNLOAD), hit("default", "new", path="/a", kind=Kind.DOWNLOAD),
             hit("default", "new", T0 + 1, path="/b"), hit("default", "new", later, path="/a")]
    await store.commit(batch)
    await store.commit([hit("default", "new", later + 1, path="/a"), hit("default", "new", later + 2, path="/b")])
    views = {path: await redis_client.hget(keys.page(path_digest(path)), "views") for path in ("/a", "/b")}
    assert views == {"/a": b"2", "/b": b"2"}  # /a: first visit, second; /b: first visit, second (next batch)
    assert await redis_client.hget(keys.page(path_digest("/a")), "downloads") == b"1"
    fields = await redis_client.hgetall(keys.visitor(visitor_from_id("default", "new")))
    names = sorted(str(name, "ascii")[:2] for name in fields)  # type: ignore[arg-type]
    assert names == ["la", "v:", "v:"]  # the second visit's /a and /b
