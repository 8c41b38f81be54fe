from __future__ import annotations

import hashlib
import time

from portal_pulse.core.clock import ManualClock, SystemClock
from portal_pulse.core.keys import digest, site_prefix
from portal_pulse.core.secret import Secret


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(100.0)
    assert clock.now() == 100.0
    assert clock.advance(1.5) == 101.5
    clock.set(50)
    assert clock.now() == 50.0


def test_system_clock_is_wall_time() -> None:
    assert abs(SystemClock().now() - time.time()) < 1


def test_secret_masks_and_compares() -> None:
    secret = Secret("abc")
    assert repr(secret) == str(secret) == "Secret('**********')"
    assert secret.matches("abc") and not secret.matches("abd")
    assert secret.reveal() == "abc"
    assert secret == Secret("abc") and secret != Secret("abd")
    assert secret != "abc"  # only another Secret is equal (and a plain string is not even read)


def test_keys_carry_hash_tag_and_digest_is_one_way() -> None:
    assert site_prefix("default") == "pulse:{default}:"
    value = digest("203.0.113.7")
    assert len(value) == 32 and "203" not in value
    assert digest("x") == digest("x") != digest("y")
    assert digest("x") == hashlib.blake2b(b"x", digest_size=16).hexdigest()


def test_a_lone_surrogate_has_a_digest() -> None:
    # aiohttp hands header bytes that are not UTF-8 over as lone surrogates: a User-Agent
    # or a path of them is digested (as its surrogate's own bytes), never an error
    assert digest("\ud800") == hashlib.blake2b(b"\xed\xa0\x80", digest_size=16).hexdigest()
    assert digest("\ud800") != digest("\ud801")


def test_secret_refuses_an_undecodable_candidate_without_raising() -> None:
    # aiohttp hands header bytes that are not UTF-8 over as lone surrogates
    secret = Secret("abc")
    assert not secret.matches(b"\xff\xfe".decode("utf-8", "surrogateescape"))
    assert not secret.matches("\udcff")
    assert not secret.matches("ábc")
