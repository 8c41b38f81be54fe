"""Group commit: concurrent hits share round trips, counts stay exact, close flushes."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from prometheus_client import generate_latest

from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.hit import Hit, Kind, Outcome
from portal_pulse.counter.state import METRICS, WRITER
from portal_pulse.counter.visitor import path_digest, visitor_from_id
from tests.command_stats import command_calls
from tests.counter.conftest import Counter
from tests.metric_samples import sample


async def scrape(counter: Counter) -> str:
    return await (await counter.client.get("/metrics")).text()


async def script_calls(counter: Counter) -> int:
    """EVALSHA calls the server has run (what a commit of one site's hits costs)."""
    return await command_calls(counter.app_redis(), "evalsha")


async def test_many_concurrent_hits_are_counted_exactly_in_few_round_trips(counter: Counter) -> None:
    before, calls_before = await scrape(counter), await script_calls(counter)
    responses = await asyncio.gather(*(counter.hit(visitor=f"v{i}", path=f"/p{i % 7}") for i in range(200)))
    assert {r.status for r in responses} == {204}
    calls = await script_calls(counter) - calls_before
    after = await scrape(counter)

    def grew(name: str) -> float:
        return sample(after, name) - sample(before, name)

    batches = grew("pulse_ingest_commit_batch_size_count")
    assert grew("pulse_ingest_commit_batch_size_sum") == 200
    assert batches < 200  # at least one batch carried more than one hit
    assert calls == batches  # one script call (one round trip) per batch
    stats = await counter.stats()
    assert stats["total"] == 200
    assert stats["pageviews"]["total"] == 200
    assert abs(stats["visitors"]["today"] - 200) <= 4  # HyperLogLog: ~0.8 % standard error
    assert stats["online"] == 200


async def test_batches_hold_several_hits(vcounter: Counter) -> None:
    await asyncio.gather(*(vcounter.hit(visitor=f"v{i}") for i in range(100)))
    text = await scrape(vcounter)
    count = sample(text, "pulse_ingest_commit_batch_size_count")
    total = sample(text, "pulse_ingest_commit_batch_size_sum")
    assert total == 100
    assert 1 <= count < 100  # several hits per batch


async def test_one_batch_spans_several_sites(vcounter: Counter) -> None:
    origin = {"Origin": "http://news.test"}
    await asyncio.gather(
        *(vcounter.hit(visitor=f"d{i}") for i in range(30)),
        *(vcounter.hit(site="news", visitor=f"n{i}", headers=origin) for i in range(30)),
    )
    assert (await vcounter.stats())["total"] == 30
    assert (await vcounter.stats("news"))["total"] == 30


def queued_hit(counter: Counter, n: int) -> Hit:
    cal = calendar_keys(counter.clock.now(), ZoneInfo("Asia/Ho_Chi_Minh"))
    return Hit(site="default", kind=Kind.PAGEVIEW, path_digest=path_digest("/"),
               visitor_digest=visitor_from_id("default", f"q{n}"), member=False, bot=False,
               now=counter.clock.now(), day=cal.day, month=cal.month, hour=cal.hour, event_digest="",
               ip_digest="")


async def test_close_commits_the_hits_still_queued_before_it_returns(vcounter: Counter) -> None:
    writer = vcounter.app[WRITER]
    waiters = [asyncio.create_task(writer.submit(queued_hit(vcounter, n))) for n in range(50)]
    await asyncio.sleep(0)  # one loop turn: every hit is queued, no commit has run yet
    assert sample(generate_latest(vcounter.app[METRICS].service.registry).decode(),
                  "pulse_ingest_pending_hits") == 50
    await writer.close()  # what SIGTERM does through the cleanup context
    # read before the waiters are awaited: close() itself must have committed them
    assert await vcounter.app_redis().hget("pulse:{default}:totals", "visits") == b"50"
    results = await asyncio.gather(*waiters)
    assert {r.outcome for r in results} == {Outcome.COUNTED}
    refused = await vcounter.hit(visitor="late")
    assert refused.status == 503  # a closed writer takes nothing more


async def test_script_is_reloaded_after_script_flush(counter: Counter) -> None:
    await counter.hit(visitor="a")
    await counter.app_redis().script_flush()
    response = await counter.hit(visitor="b")
    assert response.status == 204
    assert (await counter.stats())["total"] == 2
