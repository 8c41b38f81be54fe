"""Visitor digests, the daily salt and the deployment secret."""

from __future__ import annotations

import hashlib
import hmac

from portal_pulse.core.secret import Secret
from portal_pulse.counter.visitor import (
    _mac,
    daily_salt,
    hashing_secret,
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


def test_the_configured_secret_is_used() -> None:
    assert hashing_secret(Secret("configured")) == b"configured"


def test_without_one_each_process_has_its_own_random_secret() -> None:
    first, second = hashing_secret(None), hashing_secret(None)
    assert len(first) == 32 and first != second


def test_the_keyed_digest_is_hmac_sha256() -> None:
    """``_mac`` keeps ready HMAC states per salt: the digests must stay those of
    ``hmac.new`` (stored digests and rate-limit fields are compared across versions)."""
    salts = [daily_salt(b"s", "2026-11-26"), b"", b"k" * 64, b"k" * 65, bytes(range(200))]
    texts = ["", "ip\ndefault\n203.0.113.9", f"visitor\ndefault\n2001:db8::1\n{UA}", "caf\u00e9 \udc80", "x" * 300]
    for salt in salts:
        for text in texts:
            expected = hmac.new(salt, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]
            assert _mac(salt, text) == expected, (salt, text)
            assert _mac(salt, text) == expected  # the cached states are copied, never consumed
