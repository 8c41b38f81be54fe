"""Sessions spread over buckets, each its own hash slot; every session script declares
every key it touches, and the Lua guard refuses any other."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.scripts import Script, ScriptRunner
from portal_pulse.session.app_state import SCHEDULER
from portal_pulse.session.keys import (
    DUE_INDEXES,
    SESSION_BUCKETS,
    SESSION_EVENTS_CHANNEL,
    bucket_of,
    due_index,
    session_digest,
    session_events_stream,
    session_key,
)
from portal_pulse.session.store import ANNOUNCE, TOMBSTONE_MS, TOUCH, _source
from tests.session.session_support import Client, ClientFactory, create, session_settings, start, stream_events

SCRIPTS = ("session_prelude.lua", "create.lua", "end_session.lua", "touch.lua", "read_many.lua", "announce_due.lua")
#: A script that uses whatever key ARGV[1] names, through the guard.
PROBE = Script("probe", _source("declared_keys.lua") + "\nreturn call('EXISTS', ARGV[1])")


@pytest.fixture
async def client(redis_url: str, make_client: ClientFactory, clock: ManualClock) -> Client:
    return await start(make_client, session_settings(redis_url), clock)


def test_a_session_and_its_bucket_keys_share_one_slot() -> None:
    slots = set()
    for i in range(200):
        digest = session_digest(f"id-{i}")
        bucket = bucket_of(digest)
        assert bucket == bucket_of(digest) and 0 <= bucket < SESSION_BUCKETS  # derived: never changes
        slot = key_slot(session_key(digest).encode())
        assert slot == key_slot(due_index(bucket).encode()) == key_slot(session_events_stream(bucket).encode())
        slots.add(slot)
    assert len(slots) == SESSION_BUCKETS  # one slot per bucket, every bucket used


async def test_sessions_spread_over_every_bucket(client: Client, redis_client: Redis) -> None:
    ids = [(await create(client))["id"] for _ in range(200)]
    counts = [await redis_client.zcard(due) for due in DUE_INDEXES]
    assert sum(counts) == 200
    assert all(counts), counts  # 200 random ids leave a bucket empty with odds of ~1 in 25,000
    for session_id in ids:
        digest = session_digest(session_id)
        assert await redis_client.exists(session_key(digest)) == 1
        assert await redis_client.zscore(due_index(bucket_of(digest)), digest) is not None
    assert len(await redis_client.keys("pulse:{session}:*")) == 0  # nothing left in the old single slot


def test_no_session_script_calls_redis_but_through_the_guard() -> None:
    for name in SCRIPTS:
        source = (files("portal_pulse.session") / name).read_text(encoding="utf-8")
        code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
        assert not re.search(r"redis\s*\.\s*p?call", code), name


async def test_the_guard_refuses_an_undeclared_key(redis_client: Redis) -> None:
    runner = ScriptRunner(redis_client)
    assert await runner.run(PROBE, ["pulse:{session:1}:due"], ["pulse:{session:1}:due"]) == 0  # declared
    with pytest.raises(ResponseError, match="undeclared key pulse:{session:1}:s:x in EXISTS"):
        await runner.run(PROBE, ["pulse:{session:1}:due"], ["pulse:{session:1}:s:x"])


async def test_a_real_script_asked_for_more_sessions_than_it_declared_fails(
    client: Client, redis_client: Redis, clock: ManualClock
) -> None:
    by_bucket: dict[int, list[str]] = {}
    for _ in range(SESSION_BUCKETS + 1):  # two of them share a bucket
        digest = session_digest((await create(client))["id"])
        by_bucket.setdefault(bucket_of(digest), []).append(digest)
    bucket, (digest, other, *_) = next((b, d) for b, d in by_bucket.items() if len(d) >= 2)
    now = int(clock.now() * 1000)
    head = [now, 1000, SESSION_EVENTS_CHANNEL, TOMBSTONE_MS]
    keys = [due_index(bucket), session_events_stream(bucket), session_key(digest)]  # ``other``'s hash left out
    runner = ScriptRunner(redis_client)
    with pytest.raises(ResponseError, match="undeclared key"):
        await runner.run(TOUCH, keys, [*head, f"{now} {digest} activity 1\n{now} {other} activity 1", 3])
    clock.advance(55)  # both due
    head[0] = int(clock.now() * 1000)
    with pytest.raises(ResponseError, match="undeclared key"):
        await runner.run(ANNOUNCE, keys, [*head, f"{digest}\n{other}"])


async def test_the_due_step_leaves_a_session_touched_meanwhile(
    client: Client, redis_client: Redis, clock: ManualClock
) -> None:
    session_id = (await create(client))["id"]
    digest = session_digest(session_id)
    due = due_index(bucket_of(digest))
    clock.advance(50)  # the prompt is due
    now = int(clock.now() * 1000)
    members = await redis_client.zrangebyscore(due, "-inf", now)  # what the scheduler read...
    assert members == [digest.encode()]
    assert (await client.post(f"/v1/sessions/{session_id}/keepalive")).status == 200  # ...then a click
    keys = [due, session_events_stream(bucket_of(digest)), session_key(digest)]
    args = [now, 1000, SESSION_EVENTS_CHANNEL, TOMBSTONE_MS, digest]
    score = await redis_client.zscore(due, digest)
    assert await ScriptRunner(redis_client).run(ANNOUNCE, keys, args) == []  # not due any more
    assert await redis_client.zscore(due, digest) == score
    # the click announced the prompt it found due, then the extension: each once
    assert [e["type"] for e in await stream_events(redis_client)] == ["created", "prompt", "extended"]
    assert (await (await client.get(f"/v1/sessions/{session_id}")).json())["state"] == "active"
    assert await client.app[SCHEDULER].run_once() == 0
