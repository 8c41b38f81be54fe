"""The due-time scheduler: exactly-once announcements across processes, and timeliness."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from portal_pulse.core.clock import ManualClock
from portal_pulse.session.app_state import METRICS, SCHEDULER, STORE
from portal_pulse.session.keys import DUE_INDEXES, SESSION_BUCKETS
from portal_pulse.session.scheduler import Scheduler
from tests.metric_samples import sample
from tests.session.session_support import (
    AUTH,
    Client,
    ClientFactory,
    create,
    due_count,
    session_settings,
    start,
    stream_events,
)


async def test_two_processes_announce_each_transition_once(
    redis_url: str, make_client: ClientFactory, clock: ManualClock, redis_client: Redis
) -> None:
    settings = session_settings(redis_url, scheduler_batch=7)  # small batches: many script runs interleave
    a = await start(make_client, settings, clock)
    b = await start(make_client, settings, clock)
    ids = [(await create(a if i % 2 else b))["id"] for i in range(40)]
    await b.post(f"/v1/sessions/{ids[0]}/keepalive")
    announced_per_step = []
    for step in (50, 1, 9, 2, 1):  # prompt, countdown, end of countdown, end of grace, after
        clock.advance(step)
        counts = await asyncio.gather(*(c.app[SCHEDULER].run_once() for c in (a, b, a, b)))
        announced_per_step.append(sum(counts))
    # every prompt at 50 s, every expiry at the end of the grace window, nothing in between
    assert announced_per_step == [40, 0, 0, 40, 0]
    events = await stream_events(redis_client)
    per = Counter((e["session"], e["type"]) for e in events)
    assert set(per.values()) == {1}
    kinds = Counter(e["type"] for e in events)
    assert kinds == {"created": 40, "prompt": 40, "expired": 40, "extended": 1}
    texts = [await (await c.get("/metrics")).text() for c in (a, b)]
    announced = sum(sample(text, "pulse_session_transitions_total", type=kind)
                    for text in texts for kind in ("prompt", "expired"))
    assert announced == 80  # each counted by the one process that announced it
    assert await due_count(redis_client) == 0


async def test_due_work_of_a_dead_process_is_picked_up(
    redis_url: str, make_client: ClientFactory, clock: ManualClock, redis_client: Redis
) -> None:
    settings = session_settings(redis_url)
    a = await start(make_client, settings, clock)
    sid = (await create(a))["id"]
    await a.close()  # process A is gone; its session lives on in Redis
    b = await start(make_client, settings, clock)
    clock.advance(65)
    await b.app[SCHEDULER].run_once()
    assert [e["type"] for e in await stream_events(redis_client)] == ["created", "expired"]
    assert (await (await b.get(f"/v1/sessions/{sid}")).json())["state"] == "expired"


async def test_the_loop_does_not_spin_with_a_frozen_clock(
    redis_url: str, make_client: ClientFactory, clock: ManualClock, redis_client: Redis
) -> None:
    client = await start(make_client, session_settings(redis_url, scheduler_max_sleep_seconds=0.05), clock)
    await create(client)
    await redis_client.config_resetstat()  # this suite owns the server
    loop = asyncio.get_running_loop()
    started = loop.time()
    busy = 0
    while loop.time() - started < 0.3:
        busy += 1
        await asyncio.sleep(0)
    # A hot loop would starve this coroutine; a sleeping scheduler leaves it thousands of turns.
    assert busy > 1000
    # ... and it reads each bucket's due index once per wake-up: at most 0.3 s / 10 ms of
    # them (a loop that does not sleep reads them on every turn).
    reads = (await redis_client.info("commandstats")).get("cmdstat_zrange", {}).get("calls", 0)
    assert 1 <= int(reads) <= 40 * SESSION_BUCKETS


async def test_announced_within_a_second_of_due_with_the_real_clock(
    valkey_url: str, make_client: ClientFactory
) -> None:
    settings = session_settings(valkey_url, grace_seconds=0.0)
    client = await start(make_client, settings)
    response = await client.post(
        "/v1/sessions", json={"idle_timeout": 2, "prompt_seconds": 1},
        headers=AUTH,
    )
    assert response.status == 201
    redis_client = Redis.from_url(valkey_url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0
        while loop.time() < deadline:
            if [e["type"] for e in await stream_events(redis_client)][-1] == "expired":
                break
            await asyncio.sleep(0.05)
        events = await stream_events(redis_client)
    finally:
        await redis_client.aclose()
    assert [e["type"] for e in events] == ["created", "prompt", "expired"]
    created = int(events[0]["at"])
    assert 0 <= int(events[1]["at"]) - (created + 1000) < 1000
    assert 0 <= int(events[2]["at"]) - (created + 2000) < 1000
    text = await (await client.get("/metrics")).text()
    assert sample(text, "pulse_session_scheduler_lag_seconds_count") == 2
    assert sample(text, "pulse_session_scheduler_lag_seconds_sum") < 2.0  # each under a second late


async def test_stop_ends_the_loop_even_without_a_cancellation(
    redis_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = await start(make_client, session_settings(redis_url, scheduler_max_sleep_seconds=0.02), clock)
    scheduler = client.app[SCHEDULER]
    scheduler.stop()  # a cancellation landing inside a Redis call may surface as an error instead
    await asyncio.wait_for(scheduler.run_forever(), 1.0)  # returns at its next turn


async def stop_own_scheduler(client: Client) -> None:
    """Stop the app's own scheduler and wait for its task to end, so that only the test steps."""
    client.app[SCHEDULER].stop()
    (own,) = [task for task in asyncio.all_tasks() if task.get_name() == "session-scheduler"]
    await asyncio.wait_for(own, 5.0)


async def loop_scheduler(client: Client, clock: ManualClock, max_sleep: float,
                         actions: dict[int, Callable[[], Awaitable[object]]], steps: int,
                         ) -> tuple[Scheduler, list[float]]:
    """A scheduler on the app's store whose waits are recorded, not slept: after its
    n-th wait ``actions[n]`` runs, and after ``steps`` waits it stops."""
    await stop_own_scheduler(client)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        action = actions.get(len(waits))
        if action is not None:
            await action()
        if len(waits) == steps:
            scheduler.stop()

    scheduler = Scheduler(client.app[STORE], clock, client.app[METRICS], max_sleep, sleep=sleep)
    return scheduler, waits


async def test_the_loop_backs_off_while_buckets_fail_and_starts_over_once_they_answer(
    redis_url: str, make_client: ClientFactory, clock: ManualClock, redis_client: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await start(make_client, session_settings(redis_url), clock)

    async def break_bucket() -> None:  # a due index that is no sorted set: that bucket's calls fail
        await redis_client.set(DUE_INDEXES[0], "x")

    async def break_all() -> None:
        await redis_client.mset(dict.fromkeys(DUE_INDEXES, "x"))

    async def repair() -> None:
        await redis_client.delete(*DUE_INDEXES)

    actions: dict[int, Callable[[], Awaitable[object]]] = {6: repair, 7: break_bucket, 8: break_all, 10: repair}
    scheduler, waits = await loop_scheduler(client, clock, 5.0, actions, 11)
    beats = []
    await break_bucket()
    with caplog.at_level(logging.WARNING, "portal_pulse.session.scheduler"):
        await asyncio.wait_for(scheduler.run_forever(lambda: beats.append(len(waits))), 5.0)
    # one bucket failing: its retry follows the backoff (shorter than the 5 s sleep), the
    # step still counts as progress; answered again: the sleep; failing again: the backoff
    # from its start; every bucket failing: no progress, the backoff goes on; then the sleep
    assert waits == [0.1, 0.25, 0.5, 1.0, 2.0, 2.0, 5.0, 0.1, 0.25, 0.5, 5.0]
    assert beats == [0, 1, 2, 3, 4, 5, 6, 7, 10]
    partial = "scheduler step: 1 bucket call(s) failed; retrying them"
    assert [r.getMessage() for r in caplog.records] == [partial] * 6 + [partial] + [
        "scheduler step failed (ResponseError); retrying in 0.25s",
        "scheduler step failed (ResponseError); retrying in 0.50s",
    ]


async def test_the_loop_sleeps_until_the_next_due_time_and_measures_its_lag(
    redis_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = await start(make_client, session_settings(redis_url), clock)  # 60 s idle, 10 s prompt
    await create(client)
    clock.advance(20)
    scheduler, waits = await loop_scheduler(client, clock, 3600.0, {1: lambda: asyncio.sleep(0, clock.advance(32))}, 2)
    await asyncio.wait_for(scheduler.run_forever(), 5.0)
    # the prompt is due 50 s after creation: 30 s from the first step; the second step
    # announces it 2 s late, and the expiry (60 s idle + 2 s grace) is then 10 s away
    assert waits == [30.0, 10.0]
    text = await (await client.get("/metrics")).text()
    assert sample(text, "pulse_session_scheduler_lag_seconds_count") == 1
    assert sample(text, "pulse_session_scheduler_lag_seconds_sum") == 2.0


async def test_one_step_announces_every_due_session_batch_after_batch(
    redis_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = await start(make_client, session_settings(redis_url, scheduler_batch=1), clock)
    for _ in range(2 * SESSION_BUCKETS):  # more sessions than buckets: some bucket holds two
        await create(client)
    clock.advance(50)  # every prompt is due
    await stop_own_scheduler(client)
    assert await client.app[SCHEDULER].run_once() == 2 * SESSION_BUCKETS  # the count over all its batches
