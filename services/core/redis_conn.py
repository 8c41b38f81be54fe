"""The one place that owns connecting to Redis: build the client, ping, retry a bounded
number of times, and close it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.core.settings import RedisSettings

log = logging.getLogger(__name__)

#: Failures that mean "Redis is not answering right now": they become 503 + Retry-After.
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    RedisError,  # includes redis' ConnectionError and TimeoutError
    asyncio.TimeoutError,
    OSError,
)


def build_client(settings: RedisSettings) -> Redis:
    """A redis-py asyncio client (hiredis parser when installed) with bounded timeouts.

    Redis Cluster (``cluster = true``) returns a ``RedisCluster``; callers type it as
    ``Redis`` because the subset of commands used here is identical.
    """
    url = settings.url.replace("valkey://", "redis://", 1).replace("valkeys://", "rediss://", 1)
    options: dict[str, Any] = {
        "socket_timeout": settings.command_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "max_connections": settings.max_connections,
        "health_check_interval": 15,
        "decode_responses": False,
    }
    if settings.cluster:
        options.pop("health_check_interval")
        return RedisCluster.from_url(url, **options)  # type: ignore[return-value]
    # A blocking pool: when every connection is busy, a caller waits (bounded by the
    # command timeout) for one to come back instead of failing at once with
    # MaxConnectionsError, which turned a burst of 64+ concurrent calls into 503s.
    # No automatic retries: a script that timed out may still have run, and re-sending it
    # could count a hit twice; the caller answers 503 and the page retries with its event id.
    pool = BlockingConnectionPool.from_url(
        url, timeout=settings.command_timeout_seconds, retry=Retry(NoBackoff(), 0), **options
    )
    return Redis.from_pool(pool)


async def connect(
    settings: RedisSettings,
    attempts: int = 5,
    delay_seconds: float = 0.2,
    factory: Callable[[RedisSettings], Redis] = build_client,
) -> Redis:
    """Connect and ping, retrying a bounded number of times with a growing delay.

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
                await asyncio.sleep(delay_seconds * attempt)
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
