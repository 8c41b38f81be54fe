"""The key names hit.lua and stats_fold.lua write are the ones keys.py builds (and reads
use), and each script declares every key it touches."""

from __future__ import annotations

from typing import Any

import pytest

from portal_pulse.counter import stats_fold, store
from portal_pulse.counter.hit import Hit, Kind
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.state import FOLDER
from portal_pulse.counter.stats_fold import top_list_keys
from portal_pulse.counter.store import ScriptFailed, batch_keys
from portal_pulse.counter.visitor import path_digest, visitor_from_id
from tests.counter.conftest import GOOGLEBOT, Counter


async def test_script_writes_the_keys_the_readers_build(counter: Counter) -> None:
    await counter.hit(visitor="v", path="/a", id="e1")
    await counter.hit(visitor="b", ua=GOOGLEBOT)
    await put_baseline(counter)
    await counter.app[FOLDER].fold("default")  # the statistics log into the top lists (and trimmed)
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
    assert families >= {"totals", "day", "month", "hour", "uv", "online", "visitor", "retry", "page", "stats",
                        "profile", "rate"}
    assert stored <= recorded.declared
    assert SiteKeys("default").absent not in stored


class RecordedTops:
    """``stats_fold.top_list_keys`` as the folder calls it, remembering what it declared
    and optionally leaving out the keys of one dimension."""

    def __init__(self, drop: str | None = None) -> None:
        self.drop = drop
        self.declared: set[str] = set()

    def __call__(self, site: str, day: str, month: str) -> tuple[str, ...]:
        declared = top_list_keys(site, day, month)
        kept = tuple(key for key in declared if self.drop is None or f":{self.drop}:" not in key)
        self.declared.update(kept)
        return kept


async def test_every_key_the_fold_writes_was_declared(counter: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = RecordedTops()
    monkeypatch.setattr(stats_fold, "top_list_keys", recorded)
    assert await varied_hits(counter) == [204] * 7
    keys = SiteKeys("default")
    before = {key.decode() async for key in counter.app_redis().scan_iter(match="pulse:*")}
    await counter.app[FOLDER].fold("default")
    written = {key.decode() async for key in counter.app_redis().scan_iter(match="pulse:*")} - before
    assert {key.split(":")[2] for key in written} == {"top"}
    assert written <= recorded.declared
    assert keys.stats_log in before and not await counter.app_redis().exists(keys.stats_log)


@pytest.mark.parametrize("dimension", ["pages", "browsers"])
async def test_a_top_list_left_out_of_the_fold_s_keys_fails_the_read(
    counter: Counter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, dimension: str
) -> None:
    """A day whose keys were not declared at all (pages: the first key the fold checks) is
    not folded, and the fold gives up after a few calls instead of spinning; one missing
    dimension is the script's 'undeclared key'. Either way a bug: 500, and the log is kept."""
    monkeypatch.setattr(stats_fold, "top_list_keys", RecordedTops(drop=dimension))
    assert await varied_hits(counter) == [204] * 7
    response = await counter.client.get("/v1/stats/top", params={"site": "default", "dimension": "pages"})
    assert response.status == 500, await response.text()
    assert ("made no progress" if dimension == "pages" else "undeclared key") in caplog.text
    assert await counter.app_redis().llen(SiteKeys("default").stats_log) > 0
    assert not [key async for key in counter.app_redis().scan_iter(match="pulse:{default}:top:*")]


@pytest.mark.parametrize("family", [
    "day:", "month:", "hour:", "uv:day:", "uv:month:", "online:guests", "online:bots", "visitor:", "retry:",
    "page:", "stats:log", ":p", "profile:month:", "profile:day:", "rate:minute:", "rate:hour:",
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
    refused = [r for r in caplog.records if r.getMessage().startswith("counter script refused a key: ")]
    assert refused and "undeclared key" in refused[0].getMessage()
    failures = [r.exc_info[1] for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], ScriptFailed)]
    assert failures and all("undeclared key" in str(failure) for failure in failures)  # the 500's traceback


def test_a_bot_s_hit_does_not_end_the_declaration_of_the_batch_s_other_hits() -> None:
    keys = SiteKeys("default")
    day = {"site": "default", "now": 1_700_000_000.0, "day": "2023-11-14", "month": "2023-11", "hour": "22",
           "event_digest": "", "ip_digest": "ip", "member": False}
    bot = Hit(kind=Kind.PAGEVIEW, path_digest="p1", visitor_digest="bot", bot=True, **day)  # type: ignore[arg-type]
    person = Hit(kind=Kind.PAGEVIEW, path_digest="p2", visitor_digest="v", bot=False, seq="1",
                 **day)  # type: ignore[arg-type]
    declared = batch_keys(keys, [bot, person], [0, 1], True)
    assert {keys.visitor("v"), keys.retry("v"), keys.page("p2")} <= set(declared)
    assert keys.visitor("bot") not in declared and declared[0] == keys.totals
