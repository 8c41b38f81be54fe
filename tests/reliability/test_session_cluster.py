"""The session service on the 3-master + 3-replica Valkey cluster (conftest's
``valkey_cluster``): sessions spread over buckets land on every master, the scheduler
announces the prompts and expiries of every bucket, and nothing answers 5xx."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient
from redis.cluster import RedisCluster
from redis.crc import key_slot

from services.core.clock import ManualClock
from services.core.embedded_cluster import EmbeddedCluster
from services.session.app import create_app as create_session
from services.session.app_state import SCHEDULER
from services.session.keys import SESSION_BUCKETS, SESSION_EVENTS_STREAMS, bucket_of, session_digest, session_key
from tests.conftest import SERVICE_TOKEN, ClientFactory, cluster_settings

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
        return [Counter(fields[b"type"].decode() for _, fields in client.xrange(stream))
                for stream in SESSION_EVENTS_STREAMS]
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
