"""Visitor digests, the daily salt and the deployment secret."""

from __future__ import annotations

from redis.asyncio import Redis

from services.core.keys import DEPLOYMENT_SECRET
from services.core.secret import Secret
from services.counter.visitor import (
    SecretSource,
    daily_salt,
    ip_digest,
    visitor_from_client,
    visitor_from_id,
)

UA = "Mozilla/5.0 Firefox/133.0"


def test_page_visitor_ids_are_stored_as_digests() -> None:
    digest = visitor_from_id("default", "abc")
    assert digest == visitor_from_id("default", "abc")
    assert "abc" not in digest
    assert digest != visitor_from_id("news", "abc")
    assert len(digest) == 32


def test_pixel_visitor_rotates_with_the_local_day() -> None:
    secret = b"s"
    today = visitor_from_client(daily_salt(secret, "2026-11-26"), "default", "203.0.113.9", UA)
    again = visitor_from_client(daily_salt(secret, "2026-11-26"), "default", "203.0.113.9", UA)
    tomorrow = visitor_from_client(daily_salt(secret, "2026-11-27"), "default", "203.0.113.9", UA)
    other_ua = visitor_from_client(daily_salt(secret, "2026-11-26"), "default", "203.0.113.9", UA + "x")
    assert today == again
    assert today != tomorrow
    assert today != other_ua
    assert "203.0.113.9" not in today


def test_ip_digest_depends_on_the_secret() -> None:
    salt = daily_salt(b"one", "2026-11-26")
    assert ip_digest(salt, "default", "203.0.113.9") != ip_digest(daily_salt(b"two", "2026-11-26"), "default",
                                                                     "203.0.113.9")


async def test_configured_secret_is_used_without_redis(redis_client: Redis) -> None:
    source = SecretSource(Secret("configured"), redis_client)
    assert await source.get() == b"configured"
    assert await redis_client.exists(DEPLOYMENT_SECRET) == 0


async def test_processes_agree_on_one_random_deployment_secret(redis_client: Redis) -> None:
    first = SecretSource(None, redis_client)
    second = SecretSource(None, redis_client)
    value = await first.get()
    assert len(value) == 64
    assert await second.get() == value
    assert await redis_client.get(DEPLOYMENT_SECRET) == value
