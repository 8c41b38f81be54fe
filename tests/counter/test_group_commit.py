"""Group commit: concurrent hits share round trips, counts stay exact, close flushes."""

from __future__ import annotations

import asyncio

from services.counter.state import METRICS, STORE, WRITER
from tests.counter.conftest import BROWSER_UA, Counter, CounterFactory


async def test_many_concurrent_hits_are_counted_exactly_in_few_round_trips(counter: Counter) -> None:
    store, writer = counter.app[STORE], counter.app[WRITER]
    trips_before, batches_before = store.round_trips, writer.batches
    responses = await asyncio.gather(*(counter.hit(visitor=f"v{i}", path=f"/p{i % 7}") for i in range(200)))
    assert {r.status for r in responses} == {204}
    batches = writer.batches - batches_before
    assert batches < 200  # at least one batch carried more than one hit
    assert store.round_trips - trips_before == batches  # one round trip per batch
    stats = await counter.stats()
    assert stats["total"] == 200
    assert stats["pageviews"]["total"] == 200
    assert abs(stats["visitors"]["today"] - 200) <= 4  # HyperLogLog: ~0.8 % standard error
    assert stats["online"] == 200


async def test_batches_hold_several_hits(vcounter: Counter) -> None:
    writer = vcounter.app[WRITER]
    await asyncio.gather(*(vcounter.hit(visitor=f"v{i}") for i in range(100)))
    samples = next(iter(vcounter.app[METRICS].batch_size.collect())).samples
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert count == writer.batches
    assert total == 100
    assert total / count > 1


async def test_one_batch_spans_several_sites(vcounter: Counter) -> None:
    origin = {"Origin": "http://news.test"}
    await asyncio.gather(
        *(vcounter.hit(visitor=f"d{i}") for i in range(30)),
        *(vcounter.hit(site="news", visitor=f"n{i}", headers=origin) for i in range(30)),
    )
    assert (await vcounter.stats())["total"] == 30
    assert (await vcounter.stats("news"))["total"] == 30


async def test_closing_the_app_commits_everything_already_queued(valkey_url: str,
                                                                 start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url)
    writer = counter.app[WRITER]
    body = {"site": "default", "kind": "pageview", "path": "/", "visitor": "x"}
    tasks = [asyncio.create_task(counter.client.post("/v1/hit", json={**body, "visitor": f"v{i}"},
                                                     headers={"User-Agent": BROWSER_UA})) for i in range(50)]
    await asyncio.sleep(0)  # the requests are in flight
    responses = await asyncio.gather(*tasks)
    await writer.close()  # what SIGTERM does through the cleanup context
    assert all(r.status == 204 for r in responses)
    client = counter.app_redis()
    assert await client.hget("pulse:{default}:totals", "visits") == b"50"


async def test_script_is_reloaded_after_script_flush(counter: Counter) -> None:
    await counter.hit(visitor="a")
    await counter.app_redis().script_flush()
    response = await counter.hit(visitor="b")
    assert response.status == 204
    assert (await counter.stats())["total"] == 2
