"""The key names hit.lua writes are the ones keys.py builds (and reads use)."""

from __future__ import annotations

from services.counter.keys import SiteKeys
from services.counter.visitor import path_digest, visitor_from_id
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
