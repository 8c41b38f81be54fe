"""The key names hit.lua writes are the ones keys.py builds (and reads use)."""

from __future__ import annotations

from typing import Any

import pytest

from portal_pulse.counter import store
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.store import batch_keys
from portal_pulse.counter.visitor import path_digest, visitor_from_id
from tests.counter.conftest import GOOGLEBOT, Counter


async def test_script_writes_the_keys_the_readers_build(counter: Counter) -> None:
    await counter.hit(visitor="v", path="/a", id="e1")
    await counter.hit(visitor="b", ua=GOOGLEBOT)
    await put_baseline(counter)
    keys = SiteKeys("default")
    vd = visitor_from_id("default", "v")
    expected = {
        keys.totals, keys.baseline, keys.online("guests"), keys.online("bots"),
        keys.day("2026-11-26"), keys.month("2026-11"), keys.hour("2026-11-26T17+0700"),
        keys.visitors_day("2026-11-26"), keys.visitors_month("2026-11"), keys.page(path_digest("/a")),
        keys.visitor(vd), keys.retry(vd), keys.profile_month("2026-11"), keys.profile_day("2026-11-26"),
    }
    counted = ("pages", "referrers", "browsers", "os", "devices", "countries")  # no campaign sent
    buckets = (("day", "2026-11-26"), ("month", "2026-11"))
    # (no bucket overflowed, so none keeps a ranking: top_rank, tests/counter/test_top_ranking.py)
    expected |= {keys.top_counts(unit, bucket, dimension)
                 for unit, bucket in buckets for dimension in (*counted, "bots")}
    stored = {key.decode() async for key in counter.app_redis().scan_iter(match=keys.prefix + "*")}
    assert expected <= stored
    others = stored - expected
    assert {key.split(":")[2] for key in others} == {"rate"}
    assert all(key.startswith("pulse:{default}:") for key in stored)


async def put_baseline(counter: Counter) -> None:
    from tests.conftest import ADMIN_TOKEN

    response = await counter.client.put("/v1/admin/sites/default/baseline", json={"total": 1},
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200


class Recorded:
    """``store.batch_keys`` as the store calls it, remembering what it declared and
    optionally leaving out the keys that contain ``drop``."""

    def __init__(self, drop: str | None = None) -> None:
        self.drop = drop
        self.declared: set[str] = set()
        self.dropped: set[str] = set()

    def __call__(self, keys: SiteKeys, *args: Any) -> list[str]:
        declared = batch_keys(keys, *args)
        self.declared.update(declared)
        if self.drop is None:
            return declared
        kept = [key for key in declared if self.drop not in key or key == keys.totals]
        self.dropped.update(set(declared) - set(kept))
        return kept


async def varied_hits(counter: Counter) -> list[int]:
    """Hits that take every path of hit.lua: a pageview with dimensions and a sequence
    number, the same visitor back after the visit window (a new visit: its per-visit
    paths are cleared), a download, a heartbeat, an event id, a bot's pageview."""
    statuses = [(await counter.hit(visitor="v", path="/a", seq=1, referrer="https://search.test/?q=x")).status,
                (await counter.hit(visitor="v", path="/b", seq=2)).status]
    counter.clock.advance(counter.settings.counter.visit_window_seconds + 60)
    statuses += [(await counter.hit(visitor="v", path="/a", seq=3)).status,
                 (await counter.hit(visitor="v", kind="download", path="/f.zip")).status,
                 (await counter.hit(visitor="v", kind="heartbeat")).status,
                 (await counter.hit(visitor="w", id="e1")).status,
                 (await counter.hit(visitor="b", ua=GOOGLEBOT)).status]
    return statuses


async def test_every_key_the_script_writes_was_declared(counter: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = Recorded()
    monkeypatch.setattr(store, "batch_keys", recorded)
    assert await varied_hits(counter) == [204] * 7
    stored = {key.decode() async for key in counter.app_redis().scan_iter(match="pulse:*")}
    families = {key.split(":")[2] for key in stored}
    assert families >= {"totals", "day", "month", "hour", "uv", "online", "visitor", "retry", "page", "top",
                        "profile", "rate"}
    assert stored <= recorded.declared
    assert SiteKeys("default").absent not in stored


@pytest.mark.parametrize("family", [
    "day:", "month:", "hour:", "uv:day:", "uv:month:", "online:guests", "online:bots", "visitor:", "retry:",
    "page:", "top:day:", "top:month:", ":p", "profile:month:", "profile:day:", "rate:minute:", "rate:hour:",
])
async def test_a_key_left_out_of_the_declared_ones_fails_the_call(
    counter: Counter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, family: str
) -> None:
    recorded = Recorded(drop=family)
    monkeypatch.setattr(store, "batch_keys", recorded)
    statuses = await varied_hits(counter)
    assert recorded.dropped, f"no {family} key was declared"
    assert 500 in statuses, statuses  # a bug, answered 500, not a storage outage (503)
    assert 503 not in statuses
    assert f"undeclared key {SiteKeys('default').prefix}" in caplog.text
