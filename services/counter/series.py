"""Visits and pageviews per hour, day or month between two moments of a site's local
calendar, for charts. Parsing and bucketing are pure; the read is one pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from portal_pulse.core.errors import bad_request
from portal_pulse.counter.calendar_keys import (
    day_key,
    days_between,
    local_time,
    month_key,
    next_month,
    utc_offset,
)
from portal_pulse.counter.keys import BASELINE_DAY, BASELINE_MONTH, SiteKeys
from portal_pulse.counter.stats import parse_baseline


class Unit(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class Bucket:
    start: str  # what the client sees: 2026-11-26T17:00:00+07:00, 2026-11-26 or 2026-11
    key: str  # the record's key suffix: 2026-11-26T17+0700, 2026-11-26 or 2026-11


def parse_moment(text: str, zone: ZoneInfo, name: str, end: bool) -> datetime:
    """An ISO date or date-time in the site's zone (an explicit offset is converted).

    A bare date means the start of that day for ``from`` and its last second for ``to``.
    """
    try:
        if len(text) <= 10:
            day = date.fromisoformat(text)
            parsed = datetime(day.year, day.month, day.day, *((23, 59, 59) if end else ()))
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        message = f"{name}: expected an ISO 8601 date or date-time, got {text[:40]!r}"
        raise bad_request(message, "invalid_query") from exc
    try:
        moment = parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)
        utc_year = moment.astimezone(UTC).year
    except (OverflowError, ValueError) as exc:
        raise bad_request(f"{name}: out of range", "invalid_query") from exc
    if not MIN_YEAR <= utc_year <= MAX_YEAR or not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise bad_request(f"{name}: years {MIN_YEAR} to {MAX_YEAR} only", "invalid_query")
    return moment


#: Moments a series may name: a year's margin inside ``datetime``'s calendar (1 to 9999),
#: so no zone offset, bucket step or default span can step outside it.
MIN_YEAR, MAX_YEAR = 2, 9998


SPANS = {"hour": 23, "day": 29, "month": 11}  # default ranges: 24 hours, 30 days, 12 months


def shift(unit: Unit, moment: datetime, steps: int) -> datetime:
    """``moment`` moved by ``steps`` units (negative: back); months land on the 1st."""
    try:
        if unit is Unit.HOUR:
            return moment + timedelta(hours=steps)
        if unit is Unit.DAY:
            return moment + timedelta(days=steps)
        index = moment.year * 12 + moment.month - 1 + steps
        return moment.replace(year=index // 12, month=index % 12 + 1, day=1)
    except (OverflowError, ValueError) as exc:
        raise bad_request("the range is out of bounds", "invalid_query") from exc


def resolve_range(unit: Unit, now: datetime, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """Missing ends default relative to the given one (or to now): the default span of the unit."""
    span = SPANS[unit.value]
    if start is None and end is None:
        end = now
    if start is None:
        assert end is not None
        return shift(unit, end, -span), end
    if end is None:
        return start, shift(unit, start, span)
    return start, end


def buckets(unit: Unit, start: datetime, end: datetime, zone: ZoneInfo, max_buckets: int) -> list[Bucket]:
    if start > end:
        raise bad_request("from: must not be after to", "invalid_query")
    try:
        return _buckets(unit, start, end, zone, max_buckets)
    except (OverflowError, ValueError) as exc:  # a range at the calendar's edge
        raise bad_request("the range is out of bounds", "invalid_query") from exc


def _buckets(unit: Unit, start: datetime, end: datetime, zone: ZoneInfo, max_buckets: int) -> list[Bucket]:
    if unit is Unit.DAY:
        first, last = start.date(), end.date()
        _check(max_buckets, (last - first).days + 1)
        return [Bucket(day_key(d), day_key(d)) for d in days_between(first, last)]
    if unit is Unit.MONTH:
        count = (end.year - start.year) * 12 + end.month - start.month + 1
        _check(max_buckets, count)
        year, month, found = start.year, start.month, []
        for _ in range(count):
            found.append(Bucket(month_key(year, month), month_key(year, month)))
            year, month = next_month(year, month)
        return found
    first_ts = start.replace(minute=0, second=0, microsecond=0).timestamp()
    last_ts = end.timestamp()
    count = int((last_ts - first_ts) // 3600) + 1
    _check(max_buckets, count)
    found = []
    for step in range(count):
        local = local_time(first_ts + step * 3600, zone)
        day, colon = day_key(local.date()), utc_offset(local, ":")
        shown = f"{day}T{local.hour:02d}:{local.minute:02d}:{local.second:02d}{colon}"
        found.append(Bucket(shown, f"{day}T{local.hour:02d}{colon.replace(':', '')}"))
    return found


def series_key(site: str, unit: Unit, start: datetime, end: datetime) -> tuple[str, str, float, float]:
    """What decides a series' buckets, so equal questions share one answer: the range's
    ends floored to their bucket (the seconds of ``to=now`` do not make a new question)."""
    if unit is Unit.HOUR:
        return site, unit.value, start.replace(minute=0, second=0, microsecond=0).timestamp(), end.timestamp() // 3600
    if unit is Unit.DAY:
        return site, unit.value, start.date().toordinal(), end.date().toordinal()
    return site, unit.value, start.year * 12 + start.month, end.year * 12 + end.month


def _check(max_buckets: int, count: int) -> None:
    if count > max_buckets:
        raise bad_request(f"the range holds {count} buckets; at most {max_buckets} are allowed", "too_many_buckets")


#: Every bucket's two fields in one command: a thousand HMGETs in a pipeline cost the
#: event loop ten times what one reply of two thousand values does.
READ_BUCKETS = """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'visits', 'pageviews')
  out[2 * i - 1] = v[1] or false
  out[2 * i] = v[2] or false
end
return out
"""


async def read_series(client: Redis, site: str, unit: Unit, found: list[Bucket]) -> dict[str, Any]:
    """One round trip: the buckets (one script call, all keys in the site's slot) and the baseline."""
    keys = SiteKeys(site)
    record = {Unit.HOUR: keys.hour, Unit.DAY: keys.day, Unit.MONTH: keys.month}[unit]
    async with client.pipeline(transaction=False) as pipe:
        pipe.eval(READ_BUCKETS, len(found), *[record(bucket.key) for bucket in found])
        pipe.hgetall(keys.baseline)
        flat, raw_baseline = await pipe.execute()
    baseline = parse_baseline(raw_baseline)
    baseline_prefix = {Unit.MONTH: BASELINE_MONTH, Unit.DAY: BASELINE_DAY}.get(unit)  # the baseline has no hours
    pairs = list(zip(flat[0::2], flat[1::2], strict=True))
    return {
        "site": site,
        "unit": unit.value,
        "buckets": [
            {
                "start": bucket.start,
                "visits": int(visits or 0) + (baseline.get(baseline_prefix + bucket.key, 0) if baseline_prefix else 0),
                "pageviews": int(pageviews or 0),
            }
            for bucket, (visits, pageviews) in zip(found, pairs, strict=True)
        ],
    }
