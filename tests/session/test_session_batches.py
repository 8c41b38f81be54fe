"""Concurrent touches and status reads of different sessions travel in one script call
(the core batcher); each must act on its own session (the scripts declare every session
hash in KEYS, in the order of the batch)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from portal_pulse.core.batch_metrics import BatchMetrics
from portal_pulse.core.clock import ManualClock
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import SessionSettings
from portal_pulse.session.keys import SESSION_BUCKETS, bucket_of, due_index, session_digest, session_events_stream
from portal_pulse.session.state_machine import Timing
from portal_pulse.session.store import Outcome, SessionStore
from tests.session.session_support import ClientFactory, create, session_settings, start


async def test_one_batch_touches_and_reads_each_its_own_session(
    redis_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = await start(make_client, session_settings(redis_url), clock)
    timeouts = [60, 300, 120, 600]
    ids = [(await create(client, idle_timeout=t, prompt_seconds=10))["id"] for t in timeouts]
    clock.advance(30)
    touched = await asyncio.gather(*(client.post(f"/v1/sessions/{i}/activity") for i in ids))
    assert [r.status for r in touched] == [200] * len(ids)
    bodies = [await r.json() for r in touched]
    assert [b["remaining"] for b in bodies] == timeouts  # each extended to its own full timeout
    read = await asyncio.gather(*(client.get(f"/v1/sessions/{i}") for i in ids))
    assert [(await r.json())["idle_timeout"] for r in read] == timeouts
    clock.advance(40)  # the first session (60 s) would be prompting by now had it not been touched
    read = await asyncio.gather(*(client.get(f"/v1/sessions/{i}") for i in ids))
    assert [(await r.json())["remaining"] for r in read] == [t - 40 for t in timeouts]



async def _script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


async def _sessions(redis: Redis, name: str, idle_ms: list[int], now: int) -> tuple[SessionStore, list[str]]:
    """A store and one session per idle timeout (prompt 10 s), spread over many buckets."""
    store = SessionStore(redis, ScriptRunner(redis), SessionSettings(), 5.0, BatchMetrics(ServiceMetrics("session")))
    await store.load_scripts()
    digests = [session_digest(f"{name}-{n}") for n in range(len(idle_ms))]
    assert len({bucket_of(d) for d in digests}) >= 8
    for digest, idle in zip(digests, idle_ms, strict=True):
        assert await store.create(digest, "", Timing(idle, 10_000, 3_000), now) is not None
    return store, digests


async def test_on_one_server_a_batch_of_many_buckets_is_one_script_call(redis_client: Redis) -> None:
    """Slots do not bind a single server: a batch's status reads are one script call,
    whatever buckets their sessions are in, and each read is of its own session."""
    now = 1_000_000
    store, digests = await _sessions(redis_client, "id", [60_000 + 1000 * n for n in range(24)], now)
    before = await _script_calls(redis_client)
    read = await asyncio.gather(*(store.read(digest) for digest in digests))  # one loop turn: one batch
    assert await _script_calls(redis_client) - before == 1
    assert [s.timing.idle_ms if s else None for s in read] == [60_000 + 1000 * n for n in range(24)]


async def test_on_one_server_a_batch_of_touches_of_many_buckets_is_one_script_call(redis_client: Redis) -> None:
    """The touches too: one call, and each touch updates its own bucket's due index and
    announces to its own bucket's stream (a keep-alive click in the prompt announces)."""
    now = 1_000_000
    store, digests = await _sessions(redis_client, "touch", [60_000] * 24, now)
    later = now + 55_000  # every session in its prompt
    before = await _script_calls(redis_client)
    results = await asyncio.gather(*(store.touch(digest, "keepalive", later) for digest in digests))
    assert await _script_calls(redis_client) - before == 1
    assert [(r.outcome, r.remaining_ms, r.emitted) for r in results] == [
        (Outcome.OK, 60_000, ("prompt", "extended"))] * 24

    async def announced_in(bucket: int) -> list[tuple[str, str]]:  # (session digest, event type)
        entries: Any = await redis_client.xrange(session_events_stream(bucket))
        return [(fields[b"session"].decode(), fields[b"type"].decode()) for _, fields in entries]

    for digest in digests:
        bucket = bucket_of(digest)
        assert await redis_client.zscore(due_index(bucket), digest) == later + 50_000  # its next prompt
        assert [kind for session, kind in await announced_in(bucket) if session == digest] == [
            "created", "prompt", "extended"]
    for bucket in range(SESSION_BUCKETS):  # nothing announced to, or scheduled in, another bucket
        members: Any = await redis_client.zrange(due_index(bucket), 0, -1)
        assert all(bucket_of(m.decode()) == bucket for m in members)
        assert all(bucket_of(session) == bucket for session, _ in await announced_in(bucket))
