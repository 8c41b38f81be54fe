"""``build_client`` gives standalone and cluster clients the same guarantees: no
automatic retries, a bounded wait for a connection, connections checked before use
(maintenance notifications off), the same timeouts. Each is asserted on both kinds, and
the two that a server can show are shown against real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.typing import EncodableT

from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.redis_conn import BoundedRedisCluster, CheckedConnection, build_client
from portal_pulse.core.settings import RedisSettings


@pytest.fixture(params=["standalone", "cluster"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A server of the test's own (it is restarted), standalone or a one-node cluster."""
    node = EmbeddedServer(tmp_path / "node", appendonly=False, cluster=request.param == "cluster").start()
    yield node
    node.stop()


@pytest.fixture
async def client(server: EmbeddedServer) -> AsyncIterator[Redis]:
    built = build_client(RedisSettings(url=server.url, cluster=server.cluster, command_timeout_seconds=0.7,
                                connect_timeout_seconds=0.3, max_connections=4))
    yield built
    await built.aclose()


def connection_kwargs(client: Redis) -> dict[str, object]:
    if isinstance(client, RedisCluster):
        nodes = client.get_nodes()
        assert nodes, "the cluster client knows its nodes after its first command"
        return dict(nodes[0].connection_kwargs)
    return dict(client.connection_pool.connection_kwargs)


async def test_no_automatic_retries(client: Redis) -> None:
    await client.ping()
    if isinstance(client, RedisCluster):
        assert client.retry.get_retries() == 0  # not the cluster's default of 3 x attempts
        # MOVED updates one slot; it never closes every connection to rebuild the map
        # (that failed other slots' commands in flight: see test_slot_moves and
        # test_session_cluster)
        assert client.reinitialize_steps == 0
    else:
        retry = client.get_retry()
        assert retry is not None and retry.get_retries() == 0
    node_retry = connection_kwargs(client).get("retry")
    assert node_retry is None or (isinstance(node_retry, Retry) and node_retry.get_retries() == 0)


async def test_same_timeouts(client: Redis) -> None:
    await client.ping()
    kwargs = connection_kwargs(client)
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.7, 0.3)


async def test_a_bounded_wait_for_a_connection(client: Redis) -> None:
    """More concurrent calls than connections wait for one instead of failing with
    MaxConnectionsError; the wait is bounded by the command timeout."""
    if isinstance(client, RedisCluster):
        assert isinstance(client, BoundedRedisCluster)
        assert client.pool_timeout == 0.7
    else:
        pool = client.connection_pool
        assert isinstance(pool, BlockingConnectionPool) and pool.timeout == 0.7
    results = await asyncio.gather(*(client.incr("pulse:{t}:busy") for _ in range(300)))
    assert sorted(results) == list(range(1, 301))


async def test_connections_are_checked_before_use(client: Redis, server: EmbeddedServer) -> None:
    """Maintenance notifications are off, and a pooled connection the server closed
    while it sat idle (a restart) is replaced, not failed on its next command."""
    if isinstance(client, RedisCluster):
        assert not (client.maint_notifications_config and client.maint_notifications_config.enabled)
        await client.ping()
        assert {node.connection_class for node in client.get_nodes()} == {CheckedConnection}
    else:
        assert not client.connection_pool.maint_notifications_enabled()  # type: ignore[no-untyped-call]
        assert client.connection_pool.connection_class is CheckedConnection
    # Fill the pool with idle connections, then restart the server on the same port.
    await asyncio.gather(*(client.incr("pulse:{t}:warm") for _ in range(40)))
    await asyncio.to_thread(server.restart)
    await asyncio.sleep(0.2)  # the event loop sees every old socket's end
    results = await asyncio.gather(*(client.set("pulse:{t}:after", "1") for _ in range(40)),
                                   return_exceptions=True)
    assert [r for r in results if r is not True] == []


ARGUMENT = st.one_of(st.text(max_size=20), st.binary(max_size=20), st.integers(), st.booleans(),
                     st.floats(allow_nan=False), st.integers().map(float), st.sampled_from(["\udc80", "é", " ", "a b"]))


@hypothesis_settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(["EVALSHA", "get", "SCRIPT LOAD", "CLIENT\tSETNAME", "", b"GET", b"SCRIPT LOAD", 7]),
       args=st.lists(ARGUMENT, max_size=6))
def test_commands_are_packed_as_redis_py_packs_them(name: EncodableT, args: list[EncodableT]) -> None:
    """CheckedConnection packs with hiredis where it can: the same bytes on the wire, the
    same refusals (a bool, a lone surrogate) as redis-py's own packer."""
    command: tuple[EncodableT, ...] = (name, *args)
    ours, theirs = CheckedConnection(), Connection()
    try:
        expected = b"".join(theirs.pack_command(*command))
    except Exception as exc:
        with pytest.raises(type(exc)):
            ours.pack_command(*command)
        return
    assert b"".join(ours.pack_command(*command)) == expected
    assert b"".join(ours.pack_commands([command, command])) == b"".join(theirs.pack_commands([command, command]))
