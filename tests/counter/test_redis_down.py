"""Redis stopped: hits and reads answer 503 + Retry-After quickly, never hang, never 2xx.

Uses a server this test starts and stops itself, never the shared fixture server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse

from portal_pulse.core.batcher import BREAKER_OPEN_SECONDS
from portal_pulse.core.embedded import EmbeddedServer
from tests.conftest import make_settings
from tests.counter.conftest import CounterFactory
from tests.metric_samples import sample


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "valkey", appendonly=False).start()
    yield server
    server.stop()


async def test_redis_down_gives_503_with_retry_after(own_server: EmbeddedServer, start_counter: CounterFactory) -> None:
    counter = await start_counter(own_server.url, commit_timeout_seconds=1.0)
    assert (await counter.hit(id="before")).status == 204

    own_server.stop()
    requests: tuple[Callable[[], Awaitable[ClientResponse]], ...] = (
        lambda: counter.hit(id="during"),
        lambda: counter.client.get("/v1/stats", params={"site": "default"}),
        lambda: counter.client.get("/v1/hit.gif", params={"site": "default"}),
        lambda: counter.client.get("/v1/pages", params={"site": "default", "path": "/"}),
        lambda: counter.client.get("/v1/stats/series", params={"site": "default"}),
        lambda: counter.client.get("/readyz"),
    )
    for request in requests:
        started = time.monotonic()
        response = await request()
        elapsed = time.monotonic() - started
        assert response.status == 503, await response.text()
        assert response.headers["Retry-After"]
        assert (await response.json())["error"]["code"] == "unavailable"
        assert elapsed < 5, elapsed

    text = await (await counter.client.get("/metrics")).text()
    assert sample(text, "pulse_redis_errors_total", service="counter", operation="commit") >= 1
    assert sample(text, "pulse_redis_errors_total", service="counter", operation="stats") >= 1
    assert sample(text, "pulse_redis_up", service="counter") == 0

    own_server.start()  # same port and data dir; the client reconnects by itself
    # The refused hit, re-sent with its id as the page does after Retry-After: the
    # writer's circuit breaker lets a probe through within its open period.
    back = time.monotonic()
    retried = await counter.hit(id="during")
    while retried.status == 503 and time.monotonic() - back < BREAKER_OPEN_SECONDS + 0.5:
        await asyncio.sleep(0.05)
        retried = await counter.hit(id="during")
    assert retried.status == 204
    assert retried.headers["X-Pulse-Counted"] == "1"
    stats = await counter.stats()
    assert stats["pageviews"]["total"] == 1  # no data on disk: only the retried hit after the restart


async def test_redis_paused_times_out_into_503(own_server: EmbeddedServer, start_counter: CounterFactory) -> None:
    # The commit's own timeout (0.5 s), well inside the socket's (3 s): the answer comes
    # from the commit timeout, not from the client giving up on the socket.
    settings = make_settings(own_server.url, counter={"stats_cache_seconds": 0, "commit_timeout_seconds": 0.5},
                             redis={"command_timeout_seconds": 3.0})
    counter = await start_counter(own_server.url, settings=settings)
    assert (await counter.hit()).status == 204
    own_server.pause()  # accepts connections, answers nothing: the commit must time out
    try:
        started = time.monotonic()
        response = await counter.hit(visitor="w")
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert time.monotonic() - started < 2  # 0.5 s and a loaded machine's slack
    finally:
        own_server.resume()


async def test_stalled_storage_refuses_beyond_the_bounded_queue(
    own_server: EmbeddedServer, start_counter: CounterFactory
) -> None:
    """While Redis hangs, hits beyond ``max_pending_hits`` get 503 at once instead of
    piling up in memory behind a commit that will time out."""
    counter = await start_counter(own_server.url, commit_timeout_seconds=1.0, batch_max_hits=2, max_pending_hits=4)
    assert (await counter.hit(id="warm")).status == 204
    own_server.pause()
    try:
        started = time.monotonic()
        answers = await asyncio.gather(*(counter.hit(visitor=f"q{i}", id=f"q{i}") for i in range(20)))
        assert {a.status for a in answers} == {503}
        assert all(a.headers["Retry-After"] for a in answers)
        assert time.monotonic() - started < 5
        text = await (await counter.client.get("/metrics")).text()
        refused = sample(text, "pulse_ingest_overload_refusals_total")
        assert refused >= 20 - 2 - 4  # at most one batch in flight plus a full queue waited
    finally:
        own_server.resume()
    assert (await counter.hit(visitor="after", id="after")).status == 204
