"""Inflation limits, kept in Redis so they hold across processes; they can be turned off."""

from __future__ import annotations

from tests.counter.conftest import Counter, CounterFactory

NAT = {"X-Forwarded-For": "198.51.100.7"}  # the test client connects from 127.0.0.1, a trusted proxy


async def test_hits_per_visitor_per_minute(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, max_hits_per_visitor_per_minute=3)
    results = [(await counter.hit(kind="heartbeat")).headers["X-Pulse-Counted"] for _ in range(5)]
    assert results == ["1", "1", "1", "0; reason=rate_limited", "0; reason=rate_limited"]
    counter.clock.advance(60)
    assert (await counter.hit(kind="heartbeat")).headers["X-Pulse-Counted"] == "1"


async def test_hits_per_ip_per_minute(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, max_hits_per_ip_per_minute=4)
    results = [(await counter.hit(visitor=f"v{i}", headers=NAT)).headers["X-Pulse-Counted"] for i in range(6)]
    assert results.count("1") == 4
    assert results[-1] == "0; reason=rate_limited"
    other_ip = await counter.hit(visitor="elsewhere", headers={"X-Forwarded-For": "198.51.100.8"})
    assert other_ip.headers["X-Pulse-Counted"] == "1"
    assert (await counter.stats())["total"] == 5


async def test_new_visits_per_ip_per_hour(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, max_new_visits_per_ip_per_hour=2)
    results = [(await counter.hit(visitor=f"v{i}", headers=NAT)).headers["X-Pulse-Counted"] for i in range(3)]
    assert results == ["1", "1", "0; reason=rate_limited"]
    # Existing visits go on: only new visits are limited.
    assert (await counter.hit(visitor="v0", path="/more", headers=NAT)).headers["X-Pulse-Counted"] == "1"
    counter.clock.advance(3600)
    assert (await counter.hit(visitor="v2", headers=NAT)).headers["X-Pulse-Counted"] == "1"


async def test_rate_limited_hits_are_not_counted_and_can_be_retried(redis_url: str,
                                                                     start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, max_hits_per_visitor_per_minute=1)
    await counter.hit(id="a")
    limited = await counter.hit(id="b", path="/x")
    assert limited.headers["X-Pulse-Counted"] == "0; reason=rate_limited"
    assert (await counter.stats())["pageviews"]["total"] == 1
    counter.clock.advance(60)
    retried = await counter.hit(id="b", path="/x")  # the refused id was not burnt
    assert retried.headers["X-Pulse-Counted"] == "1"


async def test_default_limits_leave_room_for_an_office_behind_one_nat(vcounter: Counter) -> None:
    limits = vcounter.settings.counter
    assert limits.max_new_visits_per_ip_per_hour >= 500
    assert limits.max_hits_per_ip_per_minute >= 1000
    results = {(await vcounter.hit(visitor=f"staff-{i}", headers=NAT)).headers["X-Pulse-Counted"] for i in range(300)}
    assert results == {"1"}


async def test_limits_can_be_turned_off(redis_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(redis_url, rate_limits_enabled=False, max_hits_per_visitor_per_minute=1,
                                  max_hits_per_ip_per_minute=1, max_new_visits_per_ip_per_hour=1)
    results = {(await counter.hit(visitor=f"v{i % 2}", path=f"/{i}", headers=NAT)).headers["X-Pulse-Counted"]
               for i in range(10)}
    assert results == {"1"}
    keys = [key async for key in counter.app_redis().scan_iter(match="*rate*")]
    assert keys == []


async def test_the_counters_are_one_hash_per_minute_and_hour_and_expire(
    redis_url: str, start_counter: CounterFactory
) -> None:
    """However many visitors and addresses, a minute's counters are one hash and an hour's
    another, each cleaned up a while after its time is over (2 min and 2 h)."""
    counter = await start_counter(redis_url)
    for i in range(5):
        await counter.hit(visitor=f"v{i}", path=f"/p{i}", headers={"X-Forwarded-For": f"198.51.100.{i}"})
    redis = counter.app_redis()
    keys = sorted([key.decode() async for key in redis.scan_iter(match="pulse:{default}:rate:*")])
    minute = int(counter.clock.now() * 1000) // 60000
    hour = int(counter.clock.now() * 1000) // 3600000
    assert keys == [f"pulse:{{default}}:rate:hour:{hour}", f"pulse:{{default}}:rate:minute:{minute}"]
    assert len(await redis.hkeys(keys[1])) == 10  # v:<visitor> and i:<address> for five of each
    assert len(await redis.hkeys(keys[0])) == 10  # nv:<address> and np:<address> (a new path each)
    assert 7100 < await redis.ttl(keys[0]) <= 7200
    assert 0 < await redis.ttl(keys[1]) <= 120
