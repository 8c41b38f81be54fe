"""``redis.replica_acks``: a batch is acknowledged only once WAIT confirmed that many
replicas have it, in the same round trip; without enough replicas it is refused (503),
never acknowledged. Real servers: a standalone master and, for some tests, its replica."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.errors import StorageUnavailable
from portal_pulse.core.redis_conn import build_client
from portal_pulse.core.scripts import ReplicasBehind, Script, ScriptRunner
from portal_pulse.core.settings import ConfigError, RedisSettings, load_settings
from tests.command_stats import command_calls

INCR = Script("incr", "return redis.call('INCR', KEYS[1])")


@pytest.fixture
def master(own_valkey: EmbeddedServer) -> EmbeddedServer:
    return own_valkey


@pytest.fixture
def replica(tmp_path: Path, master: EmbeddedServer) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "replica", appendonly=False,
                            extra_args=("--replicaof", master.host, str(master.port))).start()
    client = redis.Redis(host=server.host, port=server.port)
    deadline = time.monotonic() + 10
    while client.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never synced"
        time.sleep(0.05)
    client.close()
    yield server
    server.stop()


@pytest.fixture
async def client(master: EmbeddedServer) -> AsyncIterator[Redis]:
    built = build_client(RedisSettings(url=master.url, command_timeout_seconds=0.4))
    yield built
    await built.aclose()


async def test_acknowledged_once_the_replica_confirmed(client: Redis, replica: EmbeddedServer) -> None:
    runner = ScriptRunner.for_settings(client, RedisSettings(url="redis://x", replica_acks=1))
    await runner.load(INCR)
    waits, calls = await command_calls(client, "wait"), await command_calls(client, "evalsha")
    replies = await runner.run_many(INCR, [(["pulse:{a}:n"], []), (["pulse:{b}:n"], [])])
    assert replies == [1, 1]
    # One WAIT for the batch, sent after its calls (on their connection: it confirms them).
    assert await command_calls(client, "evalsha") - calls == 2
    assert await command_calls(client, "wait") - waits == 1
    replica_client = redis.Redis(host=replica.host, port=replica.port)
    assert replica_client.get("pulse:{a}:n") == b"1"  # already on the replica when acknowledged
    replica_client.close()


async def test_refused_without_enough_replicas(client: Redis, replica: EmbeddedServer) -> None:
    runner = ScriptRunner(client, replica_acks=2, replica_timeout_ms=100)
    replies = await runner.run_many(INCR, [(["pulse:{a}:n"], [])])
    assert isinstance(replies[0], ReplicasBehind) and isinstance(replies[0], StorageUnavailable)
    with pytest.raises(ReplicasBehind):
        await runner.run(INCR, ["pulse:{a}:n"], [])


async def test_reads_never_wait_for_replicas(client: Redis) -> None:
    runner = ScriptRunner(client, replica_acks=1, replica_timeout_ms=100)
    assert await runner.run(INCR, ["pulse:{a}:n"], [], write=False) == 1  # no replica at all


def test_the_setting() -> None:
    assert RedisSettings().replica_acks == 0
    assert load_settings(env={"PULSE_REDIS_REPLICA_ACKS": "1"}).redis.replica_acks == 1
    with pytest.raises(ConfigError, match="replica_acks"):
        RedisSettings(replica_acks=-1).validate("redis")
