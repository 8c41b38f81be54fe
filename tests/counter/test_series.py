"""Series buckets (pure) and the series endpoint."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.core.errors import ApiError
from services.counter.series import Unit, buckets, parse_moment
from tests.counter.conftest import Counter

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def test_parse_moment_in_the_site_zone() -> None:
    assert parse_moment("2026-11-26", HCM, "from", end=False) == datetime(2026, 11, 26, tzinfo=HCM)
    assert parse_moment("2026-11-26", HCM, "to", end=True) == datetime(2026, 11, 26, 23, 59, 59, tzinfo=HCM)
    assert parse_moment("2026-11-26T10:30", HCM, "from", end=False).hour == 10
    assert parse_moment("2026-11-26T03:00:00+00:00", HCM, "from", end=False).hour == 10


def test_buckets_per_unit() -> None:
    start = datetime(2026, 11, 30, 22, tzinfo=HCM)
    end = datetime(2026, 12, 1, 1, 30, tzinfo=HCM)
    assert [b.start for b in buckets(Unit.HOUR, start, end, HCM, 100)] == [
        "2026-11-30T22:00:00+07:00", "2026-11-30T23:00:00+07:00", "2026-12-01T00:00:00+07:00",
        "2026-12-01T01:00:00+07:00"]
    assert [b.key for b in buckets(Unit.DAY, start, end, HCM, 100)] == ["2026-11-30", "2026-12-01"]
    assert [b.key for b in buckets(Unit.MONTH, datetime(2026, 11, 5, tzinfo=HCM), datetime(2027, 2, 1, tzinfo=HCM),
                                   HCM, 100)] == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_bucket_cap() -> None:
    start = datetime(2026, 1, 1, tzinfo=HCM)
    with pytest.raises(ApiError) as caught:
        buckets(Unit.DAY, start, datetime(2026, 12, 31, tzinfo=HCM), HCM, 100)
    assert caught.value.status == 400
    assert len(buckets(Unit.DAY, start, datetime(2026, 4, 10, tzinfo=HCM), HCM, 100)) == 100


async def test_series_endpoint(counter: Counter) -> None:
    await counter.hit()
    await counter.hit(path="/b")
    counter.clock.advance(3600)
    await counter.hit(visitor="other")
    response = await counter.client.get("/v1/stats/series", params={
        "site": "default", "unit": "hour", "from": "2026-11-26T16:00", "to": "2026-11-26T18:59"})
    assert response.status == 200
    body = await response.json()
    assert body["site"] == "default" and body["unit"] == "hour"
    assert body["buckets"] == [
        {"start": "2026-11-26T16:00:00+07:00", "visits": 0, "pageviews": 0},
        {"start": "2026-11-26T17:00:00+07:00", "visits": 1, "pageviews": 2},
        {"start": "2026-11-26T18:00:00+07:00", "visits": 1, "pageviews": 1},
    ]


async def test_series_defaults_to_the_last_30_days(vcounter: Counter) -> None:
    response = await vcounter.client.get("/v1/stats/series", params={"site": "default"})
    buckets_ = (await response.json())["buckets"]
    assert len(buckets_) == 30
    assert buckets_[-1]["start"] == "2026-11-26"


async def test_one_given_end_anchors_the_default_span(vcounter: Counter) -> None:
    only_to = await (await vcounter.client.get("/v1/stats/series", params={
        "site": "default", "unit": "day", "to": "2000-01-31"})).json()
    assert [only_to["buckets"][0]["start"], only_to["buckets"][-1]["start"]] == ["2000-01-02", "2000-01-31"]
    only_from = await (await vcounter.client.get("/v1/stats/series", params={
        "site": "default", "unit": "month", "from": "2030-05-20"})).json()
    assert len(only_from["buckets"]) == 12
    assert only_from["buckets"][0]["start"] == "2030-05"
