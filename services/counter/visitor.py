"""Visitor identity without storing anything personal.

- A page-supplied visitor id (random, first-party) is stored only as a digest.
- Without one (the no-JS pixel), the visitor is HMAC(daily salt, site, IP, User-Agent).
- The daily salt is HMAC(secret, local date); the secret is ``settings.secret`` (from
  PULSE_SECRET or ``secret_file``), never stored in Redis: whoever reads Redis cannot
  recompute a digest from a guessed address.
- Rate-limit keys use a salted hash of the IP for the same reason.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from functools import lru_cache

from portal_pulse.core.keys import digest
from portal_pulse.core.secret import Secret

log = logging.getLogger(__name__)
DIGEST_CHARS = 32


def hashing_secret(configured: Secret | None) -> bytes:
    """The secret the daily salts derive from: the configured one, or (tests and single
    processes only: the command line refuses to start the counter without one) a random
    one for this process. It never lives in Redis, next to the digests it protects."""
    if configured is not None:
        return configured.reveal().encode()
    log.warning("no secret configured: a random one for this process (digests change at restart)")
    return secrets.token_bytes(32)


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
