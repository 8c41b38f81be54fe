"""Visits, pageviews, heartbeats and online visitors, against each server kind.

Every window test moves a ManualClock; nothing sleeps and nothing relies on Redis TTLs.
"""

from __future__ import annotations

from tests.counter.conftest import GOOGLEBOT, Counter


async def test_pageview_counts_a_visit_and_a_pageview(counter: Counter) -> None:
    response = await counter.hit()
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "1"
    stats = await counter.stats()
    assert (stats["today"], stats["this_month"], stats["total"], stats["online"]) == (1, 1, 1, 1)
    assert stats["pageviews"] == {"today": 1, "this_month": 1, "last_month": 0, "total": 1}
    assert stats["visitors"] == {"today": 1, "this_month": 1}
    assert stats["site"] == "default"
    assert stats["timezone"] == "Asia/Ho_Chi_Minh"
    assert stats["as_of"] == "2026-11-26T17:00:00+07:00"


async def test_visit_window_is_rolling_29_59_vs_30_00(counter: Counter) -> None:
    await counter.hit()
    counter.clock.advance(1799)  # 29:59 after the previous hit: same visit
    await counter.hit()
    assert (await counter.stats())["today"] == 1
    counter.clock.advance(1800)  # 30:00 after the previous hit: a new visit
    await counter.hit()
    stats = await counter.stats()
    assert stats["today"] == 2
    assert stats["pageviews"]["today"] == 3


async def test_heartbeats_keep_the_visit_alive(counter: Counter) -> None:
    await counter.hit()
    for _ in range(5):
        counter.clock.advance(1500)
        response = await counter.hit(kind="heartbeat")
        assert response.headers["X-Pulse-Counted"] == "1"
    counter.clock.advance(1500)
    await counter.hit()  # 2 h after the first pageview, 25 min after the last heartbeat
    stats = await counter.stats()
    assert stats["today"] == 1
    assert stats["pageviews"]["today"] == 2


async def test_heartbeat_counts_nothing_but_presence(counter: Counter) -> None:
    await counter.hit(kind="heartbeat", visitor="only-heartbeats")
    stats = await counter.stats()
    assert stats["today"] == 0
    assert stats["pageviews"]["total"] == 0
    assert stats["online"] == 1


async def test_online_window_and_member_guest_split(counter: Counter) -> None:
    await counter.hit(visitor="member-1", member=True)
    await counter.hit(visitor="guest-1")
    await counter.hit(visitor="guest-2")
    await counter.hit(visitor="crawler", ua=GOOGLEBOT)
    stats = await counter.stats()
    assert stats["online"] == 3
    assert stats["online_breakdown"] == {"members": 1, "guests": 2, "bots": 1}
    counter.clock.advance(299)
    await counter.hit(visitor="guest-2", kind="heartbeat")
    counter.clock.advance(1)  # 300 s after the first three hits: they left the window
    stats = await counter.stats()
    assert stats["online"] == 1
    assert stats["online_breakdown"] == {"members": 0, "guests": 1, "bots": 0}


async def test_signing_in_moves_a_visitor_from_guests_to_members(counter: Counter) -> None:
    await counter.hit(visitor="v")
    await counter.hit(visitor="v", member=True, kind="heartbeat")
    assert (await counter.stats())["online_breakdown"] == {"members": 1, "guests": 0, "bots": 0}


async def test_bots_count_only_in_bot_figures(counter: Counter) -> None:
    response = await counter.hit(ua=GOOGLEBOT, visitor="crawler")
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=bot"
    stats = await counter.stats()
    assert stats["total"] == 0
    assert stats["pageviews"]["total"] == 0
    assert stats["visitors"]["today"] == 0
    assert stats["online"] == 0
    assert stats["online_breakdown"]["bots"] == 1
    bot_hits = await counter.app_redis().hget("pulse:{default}:totals", "bot_hits")
    assert bot_hits == b"1"


async def test_unique_visitors_per_day_and_month(counter: Counter) -> None:
    for name in ("a", "b", "c"):
        await counter.hit(visitor=name)
        await counter.hit(visitor=name, path="/other")
    counter.clock.advance(86400)
    await counter.hit(visitor="a")
    stats = await counter.stats()
    assert stats["visitors"] == {"today": 1, "this_month": 3}


async def test_sites_are_counted_apart(counter: Counter) -> None:
    await counter.hit(site="news", headers={"Origin": "http://news.test"})
    assert (await counter.stats("news"))["total"] == 1
    assert (await counter.stats("default"))["total"] == 0


async def test_online_window_is_cleaned_up_at_most_once_a_second(counter: Counter) -> None:
    """Cleanup only bounds memory (reads count by score): it runs on the first commit and
    then at most once a second of the hits' clock, and forgets only visitors who left."""
    guests = "pulse:{default}:online:guests"
    redis = counter.app_redis()

    async def stored() -> set[str]:
        return {str(member, "ascii") for member in await redis.zrange(guests, 0, -1)}  # type: ignore[arg-type]

    await counter.hit(visitor="a")  # t=0: the first commit cleans up
    counter.clock.advance(0.5)
    await counter.hit(visitor="d")  # t=0.5: no cleanup
    counter.clock.advance(299.7)
    await counter.hit(visitor="b")  # t=300.2: cleans up, "a" (t=0) has left
    assert await stored() == {_digest("d"), _digest("b")}
    assert await redis.pttl(guests) > 0
    counter.clock.advance(0.5)
    await counter.hit(visitor="c")  # t=300.7: "d" has left, but no cleanup within a second
    assert await stored() == {_digest("d"), _digest("b"), _digest("c")}
    assert (await counter.stats())["online"] == 2  # stored is not counted: "b" and "c"
    counter.clock.advance(0.6)
    await counter.hit(visitor="e")  # t=301.3: cleans up again
    assert await stored() == {_digest("b"), _digest("c"), _digest("e")}


async def test_a_visitor_is_one_key_holding_its_visit_paths(counter: Counter) -> None:
    await counter.hit(visitor="v", path="/a")
    await counter.hit(visitor="v", path="/b")
    await counter.hit(visitor="v", path="/a")
    fields = await counter.app_redis().hgetall(f"pulse:{{default}}:visitor:{_digest('v')}")
    assert sorted(str(name, "ascii")[:2] for name in fields) == ["la", "v:", "v:"]  # type: ignore[arg-type]
    counter.clock.advance(1800)  # a new visit forgets the paths of the previous one
    await counter.hit(visitor="v", path="/a")
    fields = await counter.app_redis().hgetall(f"pulse:{{default}}:visitor:{_digest('v')}")
    assert len(fields) == 2


def _digest(visitor: str) -> str:
    from portal_pulse.counter.visitor import visitor_from_id

    return visitor_from_id("default", visitor)
