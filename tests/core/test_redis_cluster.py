"""Both services against a Redis Cluster (``[redis] cluster = true``): a real Valkey in
cluster mode owning every slot. Counter keys share the site's hash tag and a session's
keys its bucket's (``{session:<b>}``), so every script call stays within one slot."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ClusterError, RedisClusterException, ResponseError, TryAgainError

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.redis_conn import build_client, key_router
from portal_pulse.core.scripts import ReplicasBehind, Script, ScriptRunner, not_run
from portal_pulse.core.settings import Settings
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.session.app import create_app as create_session
from portal_pulse.session.app_state import SCHEDULER
from tests.conftest import SERVICE_TOKEN, ClientFactory, make_settings
from tests.session.session_support import next_event

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"}


@pytest.fixture(scope="module")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("cluster"), appendonly=False, cluster=True).start()
    yield server
    server.stop()


@pytest.fixture
def cluster_settings(cluster_server: EmbeddedServer) -> Settings:
    import redis

    client = redis.Redis(host=cluster_server.host, port=cluster_server.port)
    client.flushall()
    client.close()
    base = make_settings(cluster_server.url)
    return dataclasses.replace(base, redis=dataclasses.replace(base.redis, cluster=True))


async def test_counter_on_a_cluster(cluster_settings: Settings, make_client: ClientFactory, clock: ManualClock) -> None:
    client = await make_client(create_counter(cluster_settings, clock))
    for i, site in enumerate(["default", "news", "default"]):
        body = {"site": site, "kind": "pageview", "path": "/", "visitor": f"v{i}", "id": f"e{i}"}
        response = await client.post("/v1/hit", json=body, headers=BROWSER)
        assert response.status == 204
        assert response.headers["X-Pulse-Counted"] == "1"
    response = await client.post("/v1/hit", json=body, headers=BROWSER)
    assert response.headers["X-Pulse-Counted"] == "0; reason=duplicate"
    stats = await (await client.get("/v1/stats", params={"site": "default"})).json()
    assert (stats["today"], stats["online"], stats["visitors"]["today"]) == (2, 2, 2)
    assert (await client.get("/v1/pages", params={"site": "default", "path": "/"})).status == 200
    assert (await client.get("/v1/stats/series", params={"site": "news", "unit": "day"})).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_session_on_a_cluster(cluster_settings: Settings, make_client: ClientFactory, clock: ManualClock) -> None:
    client = await make_client(create_session(cluster_settings, clock))
    response = await client.post("/v1/sessions", json={"idle_timeout": 60, "prompt_seconds": 10},
                                 headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
    assert response.status == 201
    session_id = (await response.json())["id"]
    events = await client.get(f"/v1/sessions/{session_id}/events")
    assert (await next_event(events))[0] == "state"
    clock.advance(50)
    assert await client.app[SCHEDULER].run_once() == 1  # the due index and script work per slot
    name, data = await next_event(events)  # ...and pub/sub reaches the tab
    assert (name, data["state"]) == ("prompt", "prompt")
    assert (await client.post(f"/v1/sessions/{session_id}/keepalive")).status == 200
    assert (await next_event(events))[0] == "extended"
    events.close()
    assert (await client.delete(f"/v1/sessions/{session_id}")).status == 204


def test_cluster_flag_from_the_environment(tmp_path: Path) -> None:
    from portal_pulse.core.settings import load_settings

    settings = load_settings(env={"PULSE_REDIS_URL": "redis://10.0.0.5:7000/0", "PULSE_REDIS_CLUSTER": "true"})
    assert settings.redis.cluster is True


# --- core.scripts on a cluster: a lost script, replica acknowledgements, what "not run" is.

ECHO = Script("echo", "redis.call('INCR', KEYS[1]); return {KEYS[1], ARGV[1], ARGV[2]}")


@pytest.fixture
async def cluster_client(cluster_settings: Settings) -> AsyncIterator[Redis]:
    client = build_client(cluster_settings.redis)
    await client.ping()  # as redis_conn.connect does at start: the slot map is known
    yield client
    await client.aclose()


async def test_the_key_router_names_the_node_that_owns_a_key(
    cluster_server: EmbeddedServer, cluster_settings: Settings
) -> None:
    assert key_router(Redis(host=cluster_server.host, port=cluster_server.port)) is None  # standalone: no routing
    client = build_client(cluster_settings.redis)
    node_of = key_router(client)
    assert node_of is not None
    assert node_of("pulse:{a}:x") == ""  # no slot map before the first command
    try:
        await client.ping()
        # the one node of this cluster owns every slot, under the name the client gives it
        assert node_of("pulse:{a}:x") == node_of("pulse:{b}:y") == f"{cluster_server.host}:{cluster_server.port}"
    finally:
        await client.aclose()


def test_a_script_is_known_by_the_sha1_of_its_source() -> None:
    assert ECHO.sha == hashlib.sha1(ECHO.source.encode()).hexdigest()


def test_what_a_cluster_did_not_run() -> None:
    assert not_run(TryAgainError("TRYAGAIN multiple keys request during rehashing of slot"))
    assert not_run(ClusterError("TTL exhausted."))
    assert not not_run(ClusterError("something else"))
    assert not not_run(ResponseError("TTL exhausted."))  # not the cluster client's own verdict
    assert not not_run(b"reply")


async def test_a_lost_script_is_loaded_again_and_the_call_runs_once(
    cluster_server: EmbeddedServer, cluster_client: Redis,
) -> None:
    runner = ScriptRunner(cluster_client)
    for round_ in (1, 2):
        flush_scripts(cluster_server)  # a restart or a failover lost it
        assert await runner.run(ECHO, ["{t}a"], ["x", 7]) == [b"{t}a", b"x", b"7"]
        assert await cluster_client.get("{t}a") == str(round_).encode()
    assert await runner.run_many(ECHO, [(["{t}a"], ["y", 1]), (["{u}b"], ["z", 2])]) == [
        [b"{t}a", b"y", b"1"], [b"{u}b", b"z", b"2"]]


async def test_acknowledged_calls_on_a_cluster_without_replicas_are_refused_after_running(
    cluster_server: EmbeddedServer, cluster_client: Redis,
) -> None:
    runner = ScriptRunner(cluster_client, replica_acks=1, replica_timeout_ms=10)
    flush_scripts(cluster_server)
    with pytest.raises(ReplicasBehind, match="^0 of 1 replicas confirmed the write; retry shortly$"):
        await runner.run(ECHO, ["{t}a"], ["x", 1])
    assert await cluster_client.get("{t}a") == b"1"  # it ran once (loaded, then sent again)
    assert await runner.run(ECHO, ["{t}a"], ["x", 1], write=False) == [b"{t}a", b"x", b"1"]  # a read: no WAIT


def flush_scripts(server: EmbeddedServer) -> None:
    import redis

    client = redis.Redis(host=server.host, port=server.port)
    client.script_flush()
    client.close()


async def test_a_cluster_pipeline_raises_a_failed_command_by_default(cluster_client: Redis) -> None:
    await cluster_client.set("{t}text", "not a number")
    async with cluster_client.pipeline(transaction=False) as pipe:
        pipe.incr("{t}n")
        pipe.incr("{t}text")
        with pytest.raises(ResponseError, match="not an integer"):
            await pipe.execute()
    async with cluster_client.pipeline(transaction=False) as pipe:
        pipe.incr("{t}n")
        pipe.incr("{t}text")
        first, second = await pipe.execute(raise_on_error=False)
    assert first == 2 and isinstance(second, ResponseError)


async def test_a_cluster_transaction_stays_a_transaction(cluster_client: Redis) -> None:
    async with cluster_client.pipeline(transaction=True) as pipe:  # MULTI/EXEC needs one slot
        pipe.set("{t}a", "1")
        pipe.set("{u}b", "2")
        with pytest.raises(RedisClusterException):
            await pipe.execute()
    assert await cluster_client.exists("{t}a", "{u}b") == 0  # nothing was sent
    async with cluster_client.pipeline(transaction=True) as pipe:
        pipe.set("{t}a", "1")
        pipe.incr("{t}n")
        assert await pipe.execute() == [True, 1]


def test_a_cluster_pipeline_refuses_a_shard_hint(cluster_client: Redis) -> None:
    with pytest.raises(RedisClusterException, match="^shard_hint is deprecated in cluster mode$"):
        cluster_client.pipeline(shard_hint="x")
