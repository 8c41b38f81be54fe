"""Series buckets (pure) and the series endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_pulse.core.errors import ApiError
from portal_pulse.counter.series import Unit, buckets, parse_moment, resolve_range
from tests.counter.conftest import Counter, CounterFactory

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


@pytest.mark.parametrize("text", [
    "0001-01-01", "0001-01-01T05:00:00", "0001-01-01T00:00:00+05:00", "9999-12-31", "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00-23:59",
])
def test_moments_at_the_calendar_edges_are_400(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_moment(text, HCM, "from", end=False)
    assert caught.value.status == 400


@settings(max_examples=300, deadline=None)
@given(
    unit=st.sampled_from(list(Unit)),
    start=st.one_of(st.none(), st.datetimes(timezones=st.sampled_from([HCM, UTC, ZoneInfo("Pacific/Kiritimati")]))),
    end=st.one_of(st.none(), st.datetimes(timezones=st.sampled_from([HCM, UTC, ZoneInfo("Pacific/Pago_Pago")]))),
)
def test_any_range_is_buckets_or_a_400(unit: Unit, start: datetime | None, end: datetime | None) -> None:
    """Whatever moments a client names, parsing, defaults and bucketing answer or say 400."""
    def series_buckets() -> int:
        parsed = [None if m is None else parse_moment(m.isoformat(), HCM, "from", end=False) for m in (start, end)]
        first, last = resolve_range(unit, datetime(2026, 11, 26, tzinfo=HCM), parsed[0], parsed[1])
        return len(buckets(unit, first, last, HCM, 1000))

    status = 200
    try:
        count = series_buckets()
    except ApiError as exc:
        status, count = exc.status, 1
    assert status in (200, 400) and 1 <= count <= 1000


async def test_series_outside_the_calendar_is_400(vcounter: Counter) -> None:
    for params in ({"unit": "hour", "from": "0001-01-01", "to": "0001-01-01T05:00:00"},
                   {"unit": "day", "from": "9999-12-31"}, {"unit": "month", "to": "0001-02-01"}):
        response = await vcounter.client.get("/v1/stats/series", params={"site": "default", **params})
        assert response.status == 400, await response.text()
        assert (await response.json())["error"]["code"] == "invalid_query"


async def test_series_beyond_the_budget_are_429(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, max_series_per_second=0.5)  # a turn every 2 s: over the 1 s wait
    first = await counter.client.get("/v1/stats/series", params={"site": "default"})
    assert first.status == 200
    second = await counter.client.get("/v1/stats/series", params={"site": "default", "unit": "hour"})
    assert second.status == 429 and second.headers["Retry-After"] == "1"
    assert (await second.json())["error"]["code"] == "too_many_requests"
