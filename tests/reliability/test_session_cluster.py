"""The session service on the 3-master + 3-replica Valkey cluster (conftest's
``valkey_cluster``): sessions spread over buckets land on every master, the scheduler
announces the prompts and expiries of every bucket, and nothing answers 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient
from redis.cluster import RedisCluster
from redis.crc import key_slot

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.embedded_cluster import EmbeddedCluster, MoveWay
from portal_pulse.core.redis_conn import STORAGE_ERRORS
from portal_pulse.session.app import create_app as create_session
from portal_pulse.session.app_state import SCHEDULER
from portal_pulse.session.keys import (
    SESSION_BUCKETS,
    SESSION_EVENTS_STREAMS,
    bucket_of,
    due_index,
    session_digest,
    session_events_stream,
    session_key,
)
from tests.conftest import SERVICE_TOKEN, ClientFactory, cluster_settings
from tests.session.session_support import next_event

AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
SESSIONS = 320
CONCURRENCY = 32

pytestmark = pytest.mark.slow


def session_settings(cluster: EmbeddedCluster) -> Any:
    return cluster_settings(cluster, session={"idle_timeout_seconds": 60, "prompt_seconds": 10,
                                              "grace_seconds": 2.0, "background_stale_seconds": 3600.0})


async def create_many(client: TestClient[Any, Any], count: int, statuses: Counter[int]) -> list[str]:
    ids: list[str] = []
    todo = iter(range(count))

    async def worker() -> None:
        for _ in todo:
            response = await client.post("/v1/sessions", json={}, headers=AUTH)
            statuses[response.status] += 1
            if response.status == 201:
                ids.append((await response.json())["id"])
            else:
                await response.read()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return ids


async def use_all(client: TestClient[Any, Any], ids: list[str], statuses: Counter[int]) -> None:
    """Status reads and activity of every session at once (batched per bucket)."""

    async def one(session_id: str) -> None:
        for method, path in (("GET", ""), ("POST", "/activity"), ("GET", "")):
            response = await client.request(method, f"/v1/sessions/{session_id}{path}")
            statuses[response.status] += 1
            await response.read()

    await asyncio.gather(*(one(session_id) for session_id in ids))


def events_per_bucket(cluster: EmbeddedCluster) -> list[Counter[str]]:
    client = RedisCluster(host=cluster.nodes[0].host, port=cluster.nodes[0].port)
    try:
        streams: list[Any] = [client.xrange(stream) for stream in SESSION_EVENTS_STREAMS]
        return [Counter(fields[b"type"].decode() for _, fields in entries) for entries in streams]
    finally:
        client.close()


async def test_sessions_land_on_every_master_and_every_bucket_is_announced(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock
) -> None:
    valkey_cluster.flush()
    client = await make_client(create_session(session_settings(valkey_cluster), clock))
    statuses: Counter[int] = Counter()
    ids = await create_many(client, SESSIONS, statuses)
    assert len(ids) == SESSIONS, statuses
    digests = [session_digest(session_id) for session_id in ids]
    masters = Counter(valkey_cluster.master_of_slot(key_slot(session_key(d).encode())).port for d in digests)
    assert len(masters) == 3, masters  # the sessions are spread over every master
    for port in masters:  # ...where their hashes really are
        node = next(n for n in valkey_cluster.nodes if n.port == port)
        with redis.Redis(host=node.host, port=node.port) as direct:
            assert sum(1 for _ in direct.scan_iter(match="pulse:{session:*}:s:*", count=1000)) == masters[port]
    assert len({bucket_of(d) for d in digests}) == SESSION_BUCKETS

    await use_all(client, ids, statuses)
    client.app[SCHEDULER].stop()  # the process's own loop ends: only this test's steps announce
    await asyncio.sleep(0.5)
    clock.advance(50)  # every prompt due: the scheduler steps every bucket
    assert await client.app[SCHEDULER].run_once() == SESSIONS
    clock.advance(12)  # every grace window over
    assert await client.app[SCHEDULER].run_once() == SESSIONS
    per_bucket = events_per_bucket(valkey_cluster)
    for bucket, kinds in enumerate(per_bucket):
        assert kinds["prompt"] == kinds["expired"] == kinds["created"] > 0, (bucket, kinds)
    assert sum(kinds["expired"] for kinds in per_bucket) == SESSIONS
    for session_id in ids[:20]:
        assert (await (await client.get(f"/v1/sessions/{session_id}")).json())["state"] == "expired"
    assert not [status for status in statuses if status >= 500], statuses
    assert set(statuses) == {200, 201}, statuses


@dataclass
class SessionLoad:
    """Creates, status reads and keep-alive clicks until stopped, every answer counted
    with the time it came."""

    client: TestClient[Any, Any]
    clicked: list[str]
    answers: list[tuple[float, int]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def creator(self) -> None:
        while not self.stop.is_set():
            response = await self.client.post("/v1/sessions", json={}, headers=AUTH)
            self.answers.append((time.monotonic(), response.status))
            if response.status == 201:
                self.created.append((await response.json())["id"])
            await response.read()

    async def user(self, session_id: str) -> None:
        while not self.stop.is_set():
            for method, path in (("GET", ""), ("POST", "/keepalive")):
                response = await self.client.request(method, f"/v1/sessions/{session_id}{path}")
                self.answers.append((time.monotonic(), response.status))
                await response.read()
            await asyncio.sleep(0.005)

    async def run(self) -> None:
        await asyncio.gather(*(self.creator() for _ in range(4)), *(self.user(s) for s in self.clicked))

    def statuses(self, since: float = 0.0) -> Counter[int]:
        return Counter(status for at, status in self.answers if at >= since)


#: How long after a classic move's last step a 503 may still come: the batcher lane's
#: circuit breaker (0.5 s open) that a failed batch tripped, and a margin.
AFTER_CLASSIC_MOVE_SECONDS = 1.0


@pytest.mark.parametrize("way", ["atomic", "classic"])
async def test_a_bucket_slot_moved_under_session_load(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock, way: MoveWay
) -> None:
    """Creates, status reads, clicks and the scheduler go on while one bucket's slot
    moves to another master. The atomic way: not one 5xx. The classic way (MIGRATE in
    batches of 10 keys, load in between): while the bucket's keys are split between the
    two masters its scripts get TRYAGAIN, so its calls may answer 503 (never another
    5xx), and only until the move is over. Either way no session is lost, each prompt
    is announced once, and an open event stream still hears its session."""
    valkey_cluster.flush()
    client = await make_client(create_session(session_settings(valkey_cluster), clock))
    statuses: Counter[int] = Counter()
    ids = await create_many(client, 400, statuses)
    bucket = Counter(bucket_of(session_digest(i)) for i in ids).most_common(1)[0][0]
    mine = [i for i in ids if bucket_of(session_digest(i)) == bucket]
    clicked, idle = mine[: len(mine) // 2], mine[len(mine) // 2 :]  # idle ones get their prompt mid-move
    slot = key_slot(due_index(bucket).encode())
    source = valkey_cluster.master_of_slot(slot)
    watched = clicked[0]
    events = await client.get(f"/v1/sessions/{watched}/events")
    assert (await next_event(events))[0] == "state"

    scheduler = client.app[SCHEDULER]
    scheduler.stop()  # the process's own loop ends: this test steps the scheduler under load
    await asyncio.sleep(0.5)
    load = SessionLoad(client, clicked)
    running = asyncio.create_task(load.run())
    announced = 0
    try:
        await asyncio.sleep(0.3)
        started = time.monotonic()
        moving = asyncio.create_task(asyncio.to_thread(
            valkey_cluster.move_slot, slot, way=way, batch=10, between_batches=lambda: time.sleep(0.05)))
        await asyncio.sleep(0.05)
        clock.advance(50)  # the idle sessions' prompts fall due while the slot moves
        while not moving.done():
            announced += await scheduler.run_once()
            await asyncio.sleep(0.02)
        target = await moving
        moved = time.monotonic()
        assert target.port != source.port
        assert sum(load.statuses(started).values()) - sum(load.statuses(moved).values()) > 50, "no load during the move"
        await asyncio.sleep(AFTER_CLASSIC_MOVE_SECONDS + 0.5)  # load goes on against the new owner
        announced += await scheduler.run_once()
    finally:
        load.stop.set()
        await running
    try:
        assert load.created, "no session was created under load"
        everything, after = load.statuses(), load.statuses(moved + AFTER_CLASSIC_MOVE_SECONDS)
        assert set(everything) <= ({200, 201} if way == "atomic" else {200, 201, 503}), everything
        assert set(after) == {200, 201}, after
        # no session lost: every one created before or during the move is there
        for session_id in [*ids, *load.created]:
            response = await client.get(f"/v1/sessions/{session_id}")
            assert response.status == 200, session_id
        # the idle sessions of the moved bucket were each announced once
        with RedisCluster(host=valkey_cluster.nodes[0].host, port=valkey_cluster.nodes[0].port) as direct:
            entries: Any = direct.xrange(session_events_stream(bucket))
        prompts = Counter(fields[b"session"].decode() for _, fields in entries if fields[b"type"] == b"prompt")
        assert all(prompts[session_digest(i)] == 1 for i in idle), prompts
        assert announced >= len(idle)
        # ...and events still reach an open stream: a click after the move is heard
        assert (await client.post(f"/v1/sessions/{watched}/keepalive")).status == 200
        names: list[str] = []
        while not names or names[-1] != "extended":
            names.append((await next_event(events, seconds=10))[0])
        assert set(names) <= {"prompt", "extended", "state"}, names
        events.close()
    finally:
        await asyncio.to_thread(valkey_cluster.move_slot, slot, source, way=way)


async def test_a_dead_master_delays_only_the_transitions_of_its_own_buckets(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock
) -> None:
    """The scheduler steps the buckets of the live masters while one master is dead,
    and those of the dead one once its replica is promoted."""
    valkey_cluster.flush()
    client = await make_client(create_session(session_settings(valkey_cluster), clock))
    statuses: Counter[int] = Counter()
    digests = [session_digest(i) for i in await create_many(client, 160, statuses)]
    valkey_cluster.wait_replicas_synced()
    with RedisCluster(host=valkey_cluster.nodes[0].host, port=valkey_cluster.nodes[0].port) as direct:
        direct.wait(1, 2000)  # the replicas have every session
    victim = valkey_cluster.master_of_slot(key_slot(due_index(0).encode()))
    on_victim = [d for d in digests if valkey_cluster.master_of_slot(key_slot(session_key(d).encode())) is victim]
    assert 0 < len(on_victim) < len(digests)
    scheduler = client.app[SCHEDULER]
    scheduler.stop()  # the process's own loop ends: only this test's steps announce
    await asyncio.sleep(0.5)
    victim.kill()
    try:
        clock.advance(50)
        assert await scheduler.run_once() == len(digests) - len(on_victim)  # every other bucket, on time
        assert scheduler.failing > 0
        announced, deadline = 0, time.monotonic() + 15
        while announced < len(on_victim):  # the replica is promoted: its buckets follow
            assert time.monotonic() < deadline, f"{announced} of {len(on_victim)} announced after the failover"
            await asyncio.sleep(0.2)
            with contextlib.suppress(*STORAGE_ERRORS):
                announced += await scheduler.run_once()
        assert announced == len(on_victim)
        assert scheduler.failing == 0
    finally:
        await asyncio.to_thread(victim.start)
        await asyncio.to_thread(valkey_cluster.wait_ok)
        await asyncio.to_thread(valkey_cluster.wait_replicas_synced)
