"""GET /v1/badge.svg: the five figures as a well-formed SVG image in vi or en, from the
stats cache, with clear JSON errors for a bad site or language and a 503 without Redis."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.counter.badge import render_badge
from tests.command_stats import command_calls
from tests.conftest import ADMIN_TOKEN
from tests.counter.conftest import Counter, CounterFactory

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # well-formed XML or this raises
    assert root.tag == f"{SVG}svg"
    return [node.text or "" for node in root.iter(f"{SVG}text")]


async def with_figures(counter: Counter) -> None:
    response = await counter.client.put("/v1/admin/sites/default/baseline", json={"total": 28564413},
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    await counter.hit(visitor="a")
    await counter.hit(visitor="b")


async def test_badge_shows_the_five_figures_in_vietnamese(vcounter: Counter) -> None:
    await with_figures(vcounter)
    response = await vcounter.client.get("/v1/badge.svg", params={"site": "default"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=1"  # as /v1/stats
    shown = texts(await response.text())
    assert shown == ["Thống kê truy cập", "Đang truy cập", "2", "Hôm nay", "2", "Tháng hiện tại", "2",
                     "Tháng trước", "0", "Tổng lượt truy cập", "28.564.415"]
    root = ET.fromstring(await response.text())
    assert root.get("role") == "img" and root.get("lang") == "vi"
    assert "Tổng lượt truy cập: 28.564.415" in (root.get("aria-label") or "")


async def test_badge_in_english(vcounter: Counter) -> None:
    await with_figures(vcounter)
    response = await vcounter.client.get("/v1/badge.svg", params={"site": "default", "lang": "en"})
    assert response.status == 200
    shown = texts(await response.text())
    assert shown[0] == "Visit statistics" and shown[-2:] == ["Total visits", "28,564,415"]


def test_badge_text_is_escaped() -> None:
    svg = render_badge({"online": 1, "today": 2, "this_month": 3, "last_month": 4, "total": 10**12}, "en")
    assert texts(svg)[-1] == "1,000,000,000,000"
    assert "<script" not in svg


async def test_badge_reads_the_stats_cache(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=30.0)
    redis = counter.app_redis()
    before = await command_calls(redis, "pfcount")
    await counter.stats()
    read = await command_calls(redis, "pfcount")
    assert read == before + 2  # one stats read: two PFCOUNTs (the day's and the month's visitors)
    for lang in ("vi", "en", "vi"):
        assert (await counter.client.get("/v1/badge.svg", params={"site": "default", "lang": lang})).status == 200
    assert await command_calls(redis, "pfcount") == read  # every badge from the cached read


@pytest.mark.parametrize(("params", "status", "code"), [
    ({}, 400, "missing_site"),
    ({"site": "nowhere"}, 404, "unknown_site"),
    ({"site": "default", "lang": "fr"}, 400, "invalid_query"),
    ({"site": "default", "lang": "<x>"}, 400, "invalid_query"),
])
async def test_badge_bad_input_is_a_json_error(vcounter: Counter, params: dict[str, str], status: int,
                                               code: str) -> None:
    response = await vcounter.client.get("/v1/badge.svg", params=params)
    assert response.status == status
    assert response.content_type == "application/json"
    assert (await response.json())["error"]["code"] == code


async def test_badge_without_redis_is_a_503(tmp_path: Path, start_counter: CounterFactory) -> None:
    server = EmbeddedServer(tmp_path / "valkey", appendonly=False).start()  # ours: we stop it
    try:
        counter = await start_counter(server.url)
        server.stop()
        response = await counter.client.get("/v1/badge.svg", params={"site": "default"})
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "unavailable"
    finally:
        server.stop()
