"""The one place that owns connecting to Redis: build the client (standalone or
cluster, with the same guarantees), ping, retry a bounded number of times, and close.

Both kinds of client get, from ``build_client`` alone:

- **no automatic retries**: a script that timed out may still have run, and re-sending
  it could count a hit twice; the caller answers 503 and the page retries with its
  event id (standalone: ``Retry(NoBackoff(), 0)``; cluster: ``retry=Retry(..., 0)``,
  which replaces the cluster's default of ``cluster_error_retry_attempts`` tries);
- **a bounded wait for a connection**: when every connection is busy a caller waits,
  at most the command timeout, instead of failing at once with
  ``MaxConnectionsError`` (standalone: ``BlockingConnectionPool``; cluster: one
  semaphore of ``max_connections`` permits in front of every command and pipeline,
  since redis-py's cluster nodes have no blocking pool);
- **connections checked before use**: ``CheckedConnection`` drops a pooled connection
  whose peer has closed it (a Redis restart) before sending on it, and maintenance
  notifications are off (redis-py 8 turns them on with RESP3, which skips the
  standalone pool's own check, so every connection left from before a restart failed
  its first command);
- the same socket, connect and pool timeouts.

On a cluster, a ``MOVED`` answer (a failover, a slot moved) only updates that slot's
entry in the client's map (``reinitialize_steps=0``): redis-py's default rebuilds the
whole map every fifth ``MOVED`` by closing every node's connections, which failed the
commands of other slots in flight on them (503s on other masters' sites while one
slot moved).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.maint_notifications import MaintNotificationsConfig

from portal_pulse.core.clock import Sleep
from portal_pulse.core.errors import StorageUnavailable
from portal_pulse.core.settings import RedisSettings

log = logging.getLogger(__name__)

#: Failures that mean "Redis is not answering right now": they become 503 + Retry-After.
#: ``RedisClusterException`` is not a ``RedisError``: the cluster client raises it when
#: it cannot route a command (no node for a slot, a refused pipeline command).
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    StorageUnavailable,
    RedisError,  # includes redis' ConnectionError and TimeoutError
    RedisClusterException,
    asyncio.TimeoutError,
    OSError,
)


#: Argument types hiredis packs exactly as redis-py's encoder does (bool, float and the
#: rest go through redis-py: it refuses bools, and formats floats its own way).
_PACKABLE = frozenset({str, bytes, int})


class CheckedConnection(Connection):
    """A connection that, before sending, notices that the server closed it while it
    sat in the pool (EOF or a reset seen by the event loop) and reconnects instead of
    failing the command. It reads nothing, so pending pub/sub messages are kept.

    Commands are packed by hiredis (C) when their arguments are str, bytes and int:
    redis-py's asyncio connection packs in Python, argument by argument, which cost
    ~75 us for a group commit of 5 hits (its ~60 declared keys and arguments)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        encoder = self.encoder
        name = args[0] if args else None
        if (type(name) is str and name.isalpha()  # one word: redis-py would split "SCRIPT LOAD"
                and encoder.encoding == "utf-8" and encoder.encoding_errors == "strict"
                and _PACKABLE.issuperset(map(type, args))):
            return [hiredis.pack_command(args)]
        return super().pack_command(*args)

    def is_stale(self) -> bool:
        reader = self._reader
        return reader is not None and (reader.at_eof() or reader.exception() is not None)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self.is_connected and self.is_stale():
            await self.disconnect(nowait=True)
        await super().send_packed_command(command, check_health)


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


#: Set while a task holds a cluster permit, so a nested command does not wait for another.
_HOLDS_PERMIT: contextvars.ContextVar[bool] = contextvars.ContextVar("holds_permit", default=False)


class _BoundedClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, BoundedRedisCluster)
        async with client.connection_permit():
            return await super().execute(raise_on_error, allow_redirections)


#: Connections of a node's pool kept out of the command permits (pub/sub, see below).
PUBSUB_RESERVE = 4


class BoundedRedisCluster(RedisCluster):
    """``RedisCluster`` whose callers wait (bounded) for a connection instead of
    getting ``MaxConnectionsError``: at most ``max_connections`` commands or pipelines
    at once over the whole client, so no node's pool can run out."""

    def __init__(self, *args: Any, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool_timeout = pool_timeout
        # A few of a node's connections are held outside any command: the event bus's
        # pub/sub connection lives in the pool of the node it listens on. The permits stop
        # short of the pool by that reserve, or a burst of commands to that node finds its
        # pool empty (MaxConnectionsError, seen as 503s on session creation).
        pool = kwargs.get("max_connections", 100)
        self.permits = asyncio.Semaphore(max(1, pool - PUBSUB_RESERVE))

    @asynccontextmanager
    async def connection_permit(self) -> AsyncIterator[None]:
        if _HOLDS_PERMIT.get():  # a pipeline re-sending a redirected command
            yield
            return
        try:
            async with asyncio.timeout(self.pool_timeout):
                await self.permits.acquire()
        except TimeoutError as exc:
            raise RedisConnectionError("No connection available.") from exc
        token = _HOLDS_PERMIT.set(True)
        try:
            yield
        finally:
            _HOLDS_PERMIT.reset(token)
            self.permits.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.connection_permit():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _BoundedClusterPipeline(self, transaction=transaction)  # type: ignore[abstract]


def client_options(settings: RedisSettings) -> dict[str, Any]:
    """The options both kinds of client are built with (asserted by the tests)."""
    return {
        "socket_timeout": settings.command_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "max_connections": settings.max_connections,
        "decode_responses": False,
        "retry": _no_retry(),
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


def build_client(settings: RedisSettings) -> Redis:
    """A redis-py asyncio client (hiredis parser when installed) with the guarantees
    listed in this module's docstring. Redis Cluster (``cluster = true``) returns a
    ``BoundedRedisCluster``; callers type it as ``Redis`` because the subset of
    commands used here is identical."""
    url = settings.url.replace("valkey://", "redis://", 1).replace("valkeys://", "rediss://", 1)
    options = client_options(settings)
    if settings.cluster:
        cluster = BoundedRedisCluster.from_url(
            url, pool_timeout=settings.command_timeout_seconds, reinitialize_steps=0, **options
        )
        _use_checked_connections(cluster)
        return cluster  # type: ignore[return-value]
    pool = BlockingConnectionPool.from_url(
        url, timeout=settings.command_timeout_seconds, connection_class=CheckedConnection, **options
    )
    return Redis.from_pool(pool)


def _use_checked_connections(cluster: RedisCluster) -> None:
    """The cluster client hard-codes its connection class; nodes discovered later copy
    ``connection_kwargs``, the startup nodes were built before we could say so."""
    cluster.connection_kwargs["connection_class"] = CheckedConnection
    for node in cluster.startup_nodes:
        node.connection_class = CheckedConnection


def key_router(client: Redis) -> Callable[[str], str] | None:
    """On a cluster, a function naming the node that owns a key's slot now (it follows
    the client's slot map through failovers); None on a standalone server."""
    if not isinstance(client, RedisCluster):
        return None
    cluster = client
    slots: dict[str, int] = {}

    def node_of(key: str) -> str:
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = cluster.keyslot(key)
        try:
            return str(cluster.nodes_manager.get_node_from_slot(slot).name)
        except (KeyError, RedisClusterException, RedisError):  # no slot map yet (Redis was down):
            return ""  # redis-py raises KeyError for a slot its empty map never held

    return node_of


async def connect(
    settings: RedisSettings,
    attempts: int = 5,
    delay_seconds: float = 0.2,
    factory: Callable[[RedisSettings], Redis] = build_client,
    sleep: Sleep = asyncio.sleep,
) -> Redis:
    """Connect and ping, retrying a bounded number of times with a growing delay
    (``sleep`` waits it: injected by the tests).

    A service that cannot reach Redis at start-up still starts (its /readyz says 503)
    after the last attempt: the client reconnects by itself once Redis answers.
    """
    client = factory(settings)
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.wait_for(client.ping(), settings.connect_timeout_seconds * 2)
            return client
        except STORAGE_ERRORS as exc:
            log.warning("redis not reachable (attempt %d/%d): %s", attempt, attempts, type(exc).__name__)
            if attempt < attempts:
                await sleep(delay_seconds * attempt)
    return client


@asynccontextmanager
async def redis_client(settings: RedisSettings, attempts: int = 5) -> AsyncIterator[Redis]:
    client = await connect(settings, attempts=attempts)
    try:
        yield client
    finally:
        await client.aclose()


async def is_reachable(client: Redis, timeout_seconds: float) -> bool:
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_seconds))
    except STORAGE_ERRORS:
        return False
