"""Redis failing under both services: killed (SIGKILL) and restarted, or frozen (SIGSTOP).

The services must stay up, say so on /readyz, answer 503 + Retry-After at once instead of
hanging, recover by themselves, and lose no acknowledged hit.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SERVICE_TOKEN
from tests.metric_samples import total as metric_total
from tests.reliability.conftest import NO_LIMITS
from tests.reliability.load import Answer, Call, LoadResult, hit_call, reason, replay, run_load
from tests.reliability.probe import create_session, get_json, request, until, wait_for_status
from tests.reliability.procs import Cluster, ServiceProcess, rss_bytes

#: Redis timeouts in the fault tests' processes are 0.5 s (procs.service_env); a 503 must
#: come well within the counter's commit timeout (2 s) plus scheduling slack.
ANSWER_BOUND_SECONDS = 3.0
OUTAGE_SECONDS = 2.5


def session_call(ids: list[str], index: int) -> Call:
    """Status reads and activity reports spread over a few sessions."""
    session_id = ids[index % len(ids)]
    if index % 2:
        return Call("GET", f"/v1/sessions/{session_id}", f"s{index}")
    return Call("POST", f"/v1/sessions/{session_id}/activity", f"s{index}")


async def assert_recorded(counter: ServiceProcess, acked: list[Answer]) -> None:
    """Every acknowledged hit is in Redis: sent again with its event id it is a duplicate,
    and the totals hold at least as many pageviews and visits as were acknowledged."""
    before = await get_json(f"{counter.url}/v1/stats?site=default")
    again = await replay(counter.url, acked)
    assert {a.status for a in again.answers} == {204}, again.summary()
    reasons = [reason(a) for a in again.answers]
    lost = [a.key for a, r in zip(again.answers, reasons, strict=True) if r != "duplicate"]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged hits were not recorded, e.g. {lost[:5]}"
    after = await get_json(f"{counter.url}/v1/stats?site=default")
    assert after["pageviews"]["total"] == before["pageviews"]["total"]  # the replay counted nothing
    assert after["pageviews"]["total"] >= len(acked)
    assert after["total"] >= len(acked)  # each load hit is a fresh visitor: one visit each


async def wait_acked(result: LoadResult, count: int, within: float = 15.0) -> None:
    await until(lambda: len(result.acked) >= count, within, f"{count} acknowledged requests")


@pytest.mark.slow
async def test_redis_killed_and_restarted_under_load(owned: Cluster, tmp_path: Path) -> None:
    counter = owned.service("counter", NO_LIMITS)
    session = owned.service("session")
    ids = [(await create_session(session.url, SERVICE_TOKEN))["id"] for _ in range(8)]
    hits, calls = LoadResult(), LoadResult()
    stop = asyncio.Event()
    load = asyncio.gather(
        run_load([counter.url], lambda i: hit_call("rk", i), total=20_000, concurrency=8, max_seconds=30,
                 stop=stop, into=hits, pause_seconds=0.002),
        run_load([session.url], lambda i: session_call(ids, i), total=10_000, concurrency=4, max_seconds=30,
                 stop=stop, into=calls, pause_seconds=0.01),
    )
    try:
        await wait_acked(hits, 200)
        await wait_acked(calls, 50)

        killed = time.monotonic()
        owned.redis.kill()
        for proc in (counter, session):
            took = await wait_for_status(f"{proc.url}/readyz", 503, within=2.0)
            assert time.monotonic() - killed < 2.0, f"{proc.kind} /readyz took {took:.2f}s to turn 503"

        # During the outage every call is refused at once, with a hint when to retry.
        probe_started = time.monotonic()
        status, headers, _ = await request("POST", f"{counter.url}/v1/hit", json=hit_call("probe", 0).json)
        assert (status, headers.get("Retry-After")) == (503, "1")
        status, headers, _ = await request("GET", f"{session.url}/v1/sessions/{ids[0]}")
        assert (status, headers.get("Retry-After")) == (503, "1")
        status, headers, _ = await request("POST", f"{session.url}/v1/sessions", json={},
                                           headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
        assert (status, headers.get("Retry-After")) == (503, "1")
        assert time.monotonic() - probe_started < 3 * ANSWER_BOUND_SECONDS

        await asyncio.sleep(max(0.0, killed + OUTAGE_SECONDS - time.monotonic()))
        await asyncio.to_thread(owned.redis.start)
        back = time.monotonic()
        for proc in (counter, session):
            await wait_for_status(f"{proc.url}/readyz", 200, within=2.0)
        await until(lambda: any(a.ok and a.started > back for a in hits.answers), 2.0, "a hit acknowledged")
        await until(lambda: any(a.ok and a.started > back for a in calls.answers), 2.0, "a session call answered")
        assert time.monotonic() - back < 2.5
        recovered = time.monotonic()
        await until(lambda: len([a for a in hits.acked if a.started > recovered]) >= 100, 10.0, "load resumed")
    finally:
        stop.set()
        await load

    for result in (hits, calls):
        statuses = set(result.statuses())
        assert statuses <= {200, 204, 503}, result.summary()  # no 5xx but 503, no dropped connection
        assert result.slowest() < ANSWER_BOUND_SECONDS, result.summary()
        refused = [a for a in result.answers if a.status == 503]
        assert refused, "the outage was not seen"
        assert all(a.retry_after == "1" for a in refused)
        during = result.between(killed + 0.5, killed + OUTAGE_SECONDS)
        assert during and all(a.status == 503 for a in during), result.summary()

    # Sessions survived the outage (Redis kept them on disk) and are still live.
    for session_id in ids:
        state: dict[str, Any] = await get_json(f"{session.url}/v1/sessions/{session_id}")
        assert state["state"] == "active"

    assert len(hits.acked) > 300
    await assert_recorded(counter, hits.acked)
    assert counter.running() and session.running()


@pytest.mark.slow
async def test_frozen_redis_gives_bounded_503s_and_bounded_memory(owned: Cluster) -> None:
    """Redis stops answering (SIGSTOP: connections stay open, nothing comes back). A
    flood of callers gets 503 + Retry-After within the command timeouts, nothing piles
    up without bound, and the services carry on once Redis answers again."""
    defaults = {"PULSE_REDIS_COMMAND_TIMEOUT_SECONDS": "1.0", "PULSE_REDIS_CONNECT_TIMEOUT_SECONDS": "1.0"}
    counter = owned.service("counter", {**NO_LIMITS, **defaults})
    session = owned.service("session", defaults)
    ids = [(await create_session(session.url, SERVICE_TOKEN))["id"] for _ in range(4)]
    warm = await run_load([counter.url], lambda i: hit_call("warm", i), total=300, concurrency=8)
    assert len(warm.acked) == 300, warm.summary()
    rss_before = {proc.kind: rss_bytes(proc.pid) for proc in (counter, session)}

    owned.redis.pause()
    frozen = time.monotonic()
    try:
        hits, calls = LoadResult(), LoadResult()
        await asyncio.gather(
            run_load([counter.url], lambda i: hit_call("frozen", i), total=20_000, concurrency=256, max_seconds=4,
                     into=hits),
            run_load([session.url], lambda i: session_call(ids, i), total=10_000, concurrency=128, max_seconds=4,
                     into=calls),
            wait_for_status(f"{counter.url}/readyz", 503, within=2.0),
            wait_for_status(f"{session.url}/readyz", 503, within=2.0),
        )
        rss_during = {proc.kind: rss_bytes(proc.pid) for proc in (counter, session)}
        metrics = (await request("GET", f"{counter.url}/metrics"))[2].decode()
    finally:
        owned.redis.resume()
    resumed = time.monotonic()
    assert resumed - frozen > 4

    for result in (hits, calls):
        assert result.answers
        assert set(result.statuses()) == {503}, result.summary()
        assert all(a.retry_after == "1" for a in result.answers)
        assert result.slowest() < ANSWER_BOUND_SECONDS, result.summary()
    for kind, before in rss_before.items():
        assert rss_during[kind] - before < 64 * 2**20, f"{kind} grew by {(rss_during[kind] - before) >> 20} MiB"
    assert metric_total(metrics, "pulse_redis_errors_total") > 0

    for proc in (counter, session):
        await wait_for_status(f"{proc.url}/readyz", 200, within=2.0)
    after = await run_load([counter.url], lambda i: hit_call("thawed", i), total=200, concurrency=8)
    assert len(after.acked) == 200, after.summary()
    assert time.monotonic() - resumed < 10
    assert metric_total((await request("GET", f"{counter.url}/metrics"))[2].decode(),
                        "pulse_ingest_pending_hits") == 0
    await assert_recorded(counter, [*warm.acked, *after.acked])
