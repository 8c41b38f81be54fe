"""The statistics API: CSV shape, the profile, legacy rows, bad parameters, the read
token and the cache, through the real app against a real server."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import pytest

from portal_pulse.core.secret import Secret
from portal_pulse.counter.keys import SiteKeys
from tests.command_stats import command_calls
from tests.conftest import ADMIN_TOKEN
from tests.counter.conftest import Counter, CounterFactory, counter_settings


async def get(counter: Counter, path: str, status: int = 200, span: dict[str, str] | None = None,
              **params: str) -> Any:
    response = await counter.client.get(path, params={"site": "default", **(span or {}), **params})
    assert response.status == status, await response.text()
    return response


def parse_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_top_csv_has_bom_header_and_rows(vcounter: Counter) -> None:
    await vcounter.hit(visitor="a", path="/tin-tức/một")
    await vcounter.hit(visitor="b", path="=cmd|' /c calc'!A0")  # a formula must not run in a spreadsheet
    response = await get(vcounter, "/v1/stats/top.csv", dimension="pages")
    assert response.content_type == "text/csv" and response.charset == "utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = parse_csv(await response.read())
    assert rows[0] == ["key", "visits", "pageviews"]
    assert sorted(rows[1:]) == [["'=cmd ' /c calc'!A0", "1", "1"], ["/tin-tức/một", "1", "1"]]


async def test_export_csv_is_the_series(vcounter: Counter) -> None:
    await vcounter.hit(visitor="a")
    rows = parse_csv(await (await get(vcounter, "/v1/stats/export.csv", unit="day", span={"from": "2026-11-25",
                                                                                         "to": "2026-11-26"})).read())
    assert rows == [["start", "visits", "pageviews"], ["2026-11-25", "0", "0"], ["2026-11-26", "1", "1"]]
    hours = parse_csv(await (await get(vcounter, "/v1/stats/export.csv", unit="hour")).read())
    assert len(hours) == 25 and hours[-1] == ["2026-11-26T17:00:00+07:00", "1", "1"]


async def test_profile_by_hour_and_weekday(vcounter: Counter) -> None:
    await vcounter.hit(visitor="a")  # Thursday 2026-11-26, 17:00 local
    vcounter.clock.advance(-86400 * 30)  # Tuesday 2026-10-27, 17:00
    await vcounter.hit(visitor="b")
    vcounter.clock.advance(86400 * 30)
    for span in ({"from": "2026-10-01", "to": "2026-11-30"}, {"from": "2026-10-20", "to": "2026-11-26"}):
        body = await (await get(vcounter, "/v1/stats/profile", span=span)).json()
        assert [h["visits"] for h in body["hours"] if h["visits"]] == [2] and body["hours"][17]["visits"] == 2
        assert {d["weekday"]: d["visits"] for d in body["weekdays"] if d["visits"]} == {2: 1, 4: 1}


async def test_legacy_rows(vcounter: Counter) -> None:
    await vcounter.app_redis().hset(SiteKeys("default").legacy_top("referrers"),
                                    mapping={"google.com.vn": 5000, "coccoc.com": 7000, "junk": "x"})
    body = await (await get(vcounter, "/v1/stats/top", dimension="referrers", legacy="1")).json()
    assert body == {"site": "default", "dimension": "referrers", "from": None, "to": None, "rows": [
        {"key": "coccoc.com", "visits": 7000, "pageviews": 0},
        {"key": "google.com.vn", "visits": 5000, "pageviews": 0}]}


async def test_baseline_days_show_in_the_day_series(vcounter: Counter) -> None:
    response = await vcounter.client.put("/v1/admin/sites/default/baseline", json={"months": {"2026-10": 900}},
                                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    await vcounter.app_redis().hset(SiteKeys("default").baseline, "day:2026-10-05", 40)  # as the importer writes
    days = await (await get(vcounter, "/v1/stats/series", unit="day", span={"from": "2026-10-05",
                                                                          "to": "2026-10-05"})).json()
    months = await (await get(vcounter, "/v1/stats/series", unit="month", span={"from": "2026-10-01",
                                                                            "to": "2026-10-31"})).json()
    assert days["buckets"][0]["visits"] == 40 and months["buckets"][0]["visits"] == 900


@pytest.mark.parametrize(("path", "params"), [
    ("/v1/stats/top", {"dimension": "passwords"}),
    ("/v1/stats/top", {"dimension": "pages", "limit": "0"}),
    ("/v1/stats/top", {"dimension": "pages", "limit": "abc"}),
    ("/v1/stats/top", {"dimension": "pages", "from": "2026-11-20", "to": "2026-11-01"}),
    ("/v1/stats/top", {"dimension": "pages", "from": "yesterday"}),
    ("/v1/stats/top", {"dimension": "pages", "legacy": "maybe"}),
    ("/v1/stats/top", {"dimension": "pages", "from": "1900-01-01", "to": "2026-11-01"}),
    ("/v1/stats/top.csv", {}),
    ("/v1/stats/export.csv", {"unit": "week"}),
    ("/v1/stats/profile", {"from": "2026-13-01"}),
    ("/stats", {"lang": "fr"}),
])
async def test_bad_parameters_are_400_json(vcounter: Counter, path: str, params: dict[str, str]) -> None:
    response = await get(vcounter, path, 400, span=params)
    body = await response.json()
    assert set(body["error"]) == {"code", "message"}


async def test_unknown_site_is_404(vcounter: Counter) -> None:
    for path in ("/v1/stats/top", "/v1/stats/profile", "/v1/stats/export.csv", "/stats"):
        response = await vcounter.client.get(path, params={"site": "nope", "dimension": "pages"})
        assert response.status == 404


async def test_read_token(valkey_url: str, start_counter: CounterFactory) -> None:
    settings = counter_settings(valkey_url)
    sites = tuple(dataclasses.replace(site, stats_token=Secret("tok-1")) if site.name == "default" else site
                  for site in settings.sites)
    counter = await start_counter(valkey_url, settings=dataclasses.replace(settings, sites=sites))
    for path in ("/v1/stats/top", "/v1/stats/top.csv", "/v1/stats/profile", "/v1/stats/export.csv", "/stats"):
        for token in ({}, {"token": "tok-2"}, {"token": "tok-1x"}):
            response = await get(counter, path, 401, span=token, dimension="pages")
            assert (await response.json())["error"]["code"] == "unauthorized"
        await get(counter, path, 200, dimension="pages", token="tok-1")
        response = await counter.client.get(path, params={"site": "default", "dimension": "pages"},
                                            headers={"Authorization": "Bearer tok-1"})
        assert response.status == 200
    await get(counter, "/v1/stats/top", 200, site="news", dimension="pages")  # the other site stays public
    await get(counter, "/v1/stats", 200)  # the widget's figures stay public


async def test_reads_are_cached(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, stats_cache_seconds=60)
    redis = counter.app_redis()
    await counter.hit(visitor="a", path="/x")
    reads = await command_calls(redis, "hgetall")  # a top read is HGETALLs of its buckets
    first = await (await get(counter, "/v1/stats/top", dimension="pages")).json()
    assert await command_calls(redis, "hgetall") > reads
    await counter.hit(visitor="b", path="/x")
    reads = await command_calls(redis, "hgetall")
    again = await (await get(counter, "/v1/stats/top", dimension="pages")).json()
    assert first == again
    assert await command_calls(redis, "hgetall") == reads  # served from the cache
    counter.clock.advance(61)
    later = await (await get(counter, "/v1/stats/top", dimension="pages")).json()
    assert later["rows"] == [{"key": "/x", "visits": 2, "pageviews": 2}]
