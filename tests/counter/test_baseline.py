"""Baseline: imported legacy figures, behind the admin token, replaced by each PUT."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse

from tests.conftest import ADMIN_TOKEN
from tests.counter.conftest import Counter

LEGACY = {"total": 28564413, "pageviews_total": 90000000, "months": {"2026-10": 867510, "2026-11": 802000}}


async def put(counter: Counter, body: Any, token: str | None = ADMIN_TOKEN, site: str = "default") -> ClientResponse:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response = await counter.client.put(f"/v1/admin/sites/{site}/baseline", json=body, headers=headers)
    await response.read()
    return response


async def test_baseline_is_added_to_the_figures(counter: Counter) -> None:
    await counter.hit()
    response = await put(counter, LEGACY)
    assert response.status == 200
    assert (await response.json())["total"] == 28564413
    stats = await counter.stats()
    assert stats["total"] == 28564414
    assert stats["this_month"] == 802001
    assert stats["last_month"] == 867510
    assert stats["today"] == 1
    assert stats["pageviews"]["total"] == 90000001


async def test_put_replaces_the_baseline_idempotently(counter: Counter) -> None:
    await put(counter, LEGACY)
    await put(counter, LEGACY)
    assert (await counter.stats())["total"] == 28564413
    await put(counter, {"total": 5})
    stats = await counter.stats()
    assert (stats["total"], stats["last_month"], stats["this_month"]) == (5, 0, 0)


async def test_month_series_include_baseline_months(counter: Counter) -> None:
    await put(counter, LEGACY)
    await counter.hit()
    response = await counter.client.get("/v1/stats/series", params={
        "site": "default", "unit": "month", "from": "2026-09-01", "to": "2026-11-30"})
    buckets = (await response.json())["buckets"]
    assert [(b["start"], b["visits"]) for b in buckets] == [("2026-09", 0), ("2026-10", 867510), ("2026-11", 802001)]


async def test_baseline_days_are_added_to_today_and_the_day_series(counter: Counter) -> None:
    response = await put(counter, {**LEGACY, "days": {"2026-11-25": 30000, "2026-11-26": 25606}})
    assert (await response.json())["days"] == {"2026-11-25": 30000, "2026-11-26": 25606}
    await counter.hit()
    assert (await counter.stats())["today"] == 25607  # the test clock: 2026-11-26 in Ho Chi Minh City
    response = await counter.client.get("/v1/stats/series", params={
        "site": "default", "unit": "day", "from": "2026-11-24", "to": "2026-11-26"})
    buckets = (await response.json())["buckets"]
    assert [(b["start"], b["visits"]) for b in buckets] == [("2026-11-24", 0), ("2026-11-25", 30000),
                                                            ("2026-11-26", 25607)]
    response = await counter.client.get("/v1/stats/series", params={
        "site": "default", "unit": "hour", "from": "2026-11-26T16:00", "to": "2026-11-26T17:00"})
    assert [b["visits"] for b in (await response.json())["buckets"]] == [0, 1]  # the baseline has no hours


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
async def test_missing_or_wrong_token_is_refused(vcounter: Counter, token: str | None) -> None:
    response = await put(vcounter, LEGACY, token=token)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert (await vcounter.stats())["total"] == 0


async def test_unknown_site_after_a_valid_token_is_404(vcounter: Counter) -> None:
    assert (await put(vcounter, LEGACY, site="nope")).status == 404
    assert (await put(vcounter, LEGACY, token="bad", site="nope")).status == 401


@pytest.mark.parametrize(
    "body",
    [
        {"total": -1},
        {"total": "12"},
        {"months": {"2026-13": 1}},
        {"months": {"October": 1}},
        {"months": {"2026-10": -5}},
        {"unexpected": 1},
        [1, 2],
        {"total": 10**16},
        {"days": {"2026-11-31": 1}},
        {"days": {"2026-11": 1}},
        {"days": {"2026-11-05": -1}},
    ],
)
async def test_bad_baselines_are_400(vcounter: Counter, body: Any) -> None:
    response = await put(vcounter, body)
    assert response.status == 400, await response.text()


async def test_baseline_needs_json(vcounter: Counter) -> None:
    response = await vcounter.client.put("/v1/admin/sites/default/baseline", data="total=1",
                                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                                  "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415
