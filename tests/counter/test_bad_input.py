"""Every bad input gets the right 4xx as JSON ``{"error": {"code", "message"}}``, never a 500."""

from __future__ import annotations

import json

import pytest
from aiohttp import ClientResponse

from tests.counter.conftest import BROWSER_UA, Counter
from tests.metric_samples import sample

GOOD = {"site": "default", "kind": "pageview", "path": "/", "visitor": "v"}


async def assert_error(response: ClientResponse, status: int, code: str | None = None) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code


async def post_raw(counter: Counter, data: bytes, content_type: str = "application/json") -> ClientResponse:
    return await counter.client.post("/v1/hit", data=data,
                                     headers={"Content-Type": content_type, "User-Agent": BROWSER_UA})


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"[]", 400, "invalid_body"),
        (b'"just a string"', 400, "invalid_body"),
        (b'{"site": 7, "kind": "pageview"}', 400, "invalid_body"),
        (b'{"site": "default", "member": "yes"}', 400, "invalid_body"),
        (b'{"site": "default", "path": ["/"]}', 400, "invalid_body"),
        (b'{"kind": "pageview"}', 400, "invalid_body"),
        (b'{"site": "default", "kind": "click"}', 400, "unknown_kind"),
        (b'{"site": "nowhere", "kind": "pageview"}', 404, "unknown_site"),
        (b'{"site": "", "kind": "pageview"}', 400, "missing_site"),
        (b'{"site": "default", "path": ""}', 400, "invalid_body"),
        (b'{"site": "default", "path": "\xff\xfe"}', 400, "invalid_json"),
        (b'\xff\xfe\x00{', 400, "invalid_json"),
        (b'{"site": "default", "x": ' + b"[" * 50000 + b"]" * 50000 + b"}", 413, "body_too_large"),
    ],
)
async def test_bad_bodies(vcounter: Counter, body: bytes, status: int, code: str) -> None:
    await assert_error(await post_raw(vcounter, body), status, code)


async def test_nesting_bomb_under_the_body_cap(vcounter: Counter) -> None:
    depth = 4000
    body = b'{"site": "default", "x": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(body) < vcounter.settings.counter.max_body_bytes
    await assert_error(await post_raw(vcounter, body), 400, "invalid_json")


@pytest.mark.parametrize(
    ("field", "limit"),
    [("path", "max_path_length"), ("visitor", "max_visitor_length"), ("id", "max_event_id_length"),
     ("referrer", "max_referrer_length")],
)
async def test_over_long_fields(vcounter: Counter, field: str, limit: str) -> None:
    size = getattr(vcounter.settings.counter, limit)
    ok = await post_raw(vcounter, json.dumps({**GOOD, field: "a" * size}).encode())
    assert ok.status == 204
    await assert_error(await post_raw(vcounter, json.dumps({**GOOD, field: "a" * (size + 1)}).encode()),
                       400, "field_too_long")


async def test_body_over_the_cap_is_413(vcounter: Counter) -> None:
    body = json.dumps({**GOOD, "padding": "x" * vcounter.settings.counter.max_body_bytes}).encode()
    await assert_error(await post_raw(vcounter, body), 413)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/xml"])
async def test_wrong_content_type_is_415(vcounter: Counter, content_type: str) -> None:
    response = await post_raw(vcounter, json.dumps(GOOD).encode(), content_type)
    await assert_error(response, 415, "unsupported_media_type")
    assert (await response.json())["error"]["message"] == "expected one of: application/json, text/plain"


async def test_text_plain_is_accepted_for_send_beacon(vcounter: Counter) -> None:
    response = await post_raw(vcounter, json.dumps(GOOD).encode(), "text/plain;charset=UTF-8")
    assert response.status == 204


async def test_unknown_fields_are_ignored(vcounter: Counter) -> None:
    response = await post_raw(vcounter, json.dumps({**GOOD, "screen": "1920x1080"}).encode())
    assert response.status == 204


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/stats", {}, 400),
        ("/v1/stats", {"site": "nowhere"}, 404),
        ("/v1/pages", {"site": "default"}, 400),
        ("/v1/pages", {"site": "default", "path": "a" * 5000}, 400),
        ("/v1/pages", {"site": "nowhere", "path": "/"}, 404),
        ("/v1/stats/series", {"site": "default", "unit": "week"}, 400),
        ("/v1/stats/series", {"site": "default", "unit": "day", "from": "yesterday"}, 400),
        ("/v1/stats/series", {"site": "default", "unit": "day", "from": "2026-13-01"}, 400),
        ("/v1/stats/series", {"site": "default", "unit": "day", "from": "2026-11-02", "to": "2026-11-01"}, 400),
        ("/v1/stats/series", {"site": "default", "unit": "hour", "from": "2020-01-01", "to": "2026-01-01"}, 400),
        ("/v1/stats/series", {"site": "default", "unit": "day", "from": "0001-01-01", "to": "9999-12-31"}, 400),
        ("/v1/stats/series", {"site": "default", "unit": "month", "from": "0001-01", "to": "9999-12"}, 400),
        ("/v1/stats/series", {"site": "default", "from": "9999-12-31T23:59:59-12:00"}, 400),
        ("/v1/hit.gif", {}, 400),
        ("/v1/hit.gif", {"site": "nowhere"}, 404),
        ("/v1/hit.gif", {"site": "default", "kind": "click"}, 400),
        ("/v1/hit.gif", {"site": "default", "member": "maybe"}, 400),
        ("/v1/hit.gif", {"site": "default", "path": ""}, 400),
    ],
)
async def test_bad_queries(vcounter: Counter, path: str, params: dict[str, str], status: int) -> None:
    response = await vcounter.client.get(path, params=params, headers={"User-Agent": BROWSER_UA})
    await assert_error(response, status)


async def test_bad_stats_flag(vcounter: Counter) -> None:
    response = await vcounter.client.post("/v1/hit?stats=maybe", json=GOOD, headers={"User-Agent": BROWSER_UA})
    await assert_error(response, 400)
    assert (await vcounter.stats())["total"] == 0  # refused before it was written


async def test_unknown_route_and_method(vcounter: Counter) -> None:
    await assert_error(await vcounter.client.get("/v2/nothing"), 404)
    await assert_error(await vcounter.client.delete("/v1/stats"), 405)


async def test_rejections_are_counted_with_bounded_labels(vcounter: Counter) -> None:
    await post_raw(vcounter, b'{"site": "nowhere", "kind": "pageview"}')
    await post_raw(vcounter, b'{"site": "default", "kind": "click"}')
    await post_raw(vcounter, b"{oops")
    text = await (await vcounter.client.get("/metrics")).text()
    hits = "pulse_ingest_hits_total"
    assert sample(text, hits, kind="pageview", result="rejected", site="_unknown") == 1
    assert sample(text, hits, kind="_unknown", result="rejected", site="default") == 1
    assert sample(text, hits, kind="_unknown", result="rejected", site="_unknown") == 1
    assert "nowhere" not in text and "click" not in text
