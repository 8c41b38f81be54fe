"""Visitor identity without storing anything personal.

- A page-supplied visitor id (random, first-party) is stored only as a digest.
- Without one (the no-JS pixel), the visitor is HMAC(daily salt, site, IP, User-Agent).
- The daily salt is HMAC(secret, local date); the secret is ``settings.secret`` or a
  random deployment secret created once in Redis with SET NX, so all processes agree.
- Rate-limit keys use a salted hash of the IP for the same reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from functools import lru_cache

from redis.asyncio import Redis

from services.core.keys import DEPLOYMENT_SECRET, digest
from services.core.secret import Secret

DIGEST_CHARS = 32


class SecretSource:
    """The hashing secret: configured, or the deployment's random one from Redis."""

    def __init__(self, configured: Secret | None, client: Redis) -> None:
        self._value = configured.reveal().encode() if configured is not None else None
        self._client = client
        self._lock = asyncio.Lock()

    @property
    def cached(self) -> bytes | None:
        """The secret if already known (no I/O), else None: then ``await get()``."""
        return self._value

    async def get(self) -> bytes:
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                await self._client.set(DEPLOYMENT_SECRET, secrets.token_hex(32), nx=True)
                stored = await self._client.get(DEPLOYMENT_SECRET)
                if stored is None:  # evicted between the two calls: try again next hit
                    raise ConnectionError("deployment secret vanished")
                self._value = stored if isinstance(stored, bytes) else str(stored).encode()
            return self._value


@lru_cache(maxsize=16)
def daily_salt(secret: bytes, local_day: str) -> bytes:
    return hmac.new(secret, f"salt:{local_day}".encode(), hashlib.sha256).digest()


def _mac(salt: bytes, text: str) -> str:
    return hmac.new(salt, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:DIGEST_CHARS]


def visitor_from_id(site: str, visitor: str) -> str:
    """Digest of a page-supplied visitor id."""
    return digest(f"visitor:{site}:{visitor}", DIGEST_CHARS)


def visitor_from_client(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    """The no-JS visitor: changes every local day, cannot be reversed to the IP or UA."""
    return _mac(salt, f"visitor\n{site}\n{ip}\n{user_agent}")


def ip_digest(salt: bytes, site: str, ip: str) -> str:
    return _mac(salt, f"ip\n{site}\n{ip}")


def event_digest(site: str, event_id: str) -> str:
    return digest(f"event:{site}:{event_id}", DIGEST_CHARS)


@lru_cache(maxsize=4096)
def path_digest(path: str) -> str:
    return digest(f"path:{path}", DIGEST_CHARS)
