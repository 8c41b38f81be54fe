"""Visits by local hour of day and by weekday over a date range: whole months from the
month profile ``hit.lua`` keeps, the other days from their hour and day records (which
count the same visits). One pipelined read."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from services.counter.keys import SiteKeys
from services.counter.ranges import Cover, DateRange, day_keys
from services.counter.series import Unit, buckets

HOURS = range(24)
WEEKDAYS = range(1, 8)


def _hour_keys(found: Cover, zone: ZoneInfo) -> list[tuple[int, str]]:
    """(local hour of day, hour record key) of every hour of the cover's days."""
    pairs: list[tuple[int, str]] = []
    for day in found.days:
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day, time(23, 59, 59), tzinfo=zone)
        for bucket in buckets(Unit.HOUR, start, end, zone, 48):
            pairs.append((int(bucket.key[11:13]), bucket.key))
    return pairs


async def read_profile(client: Redis, site: str, zone: ZoneInfo, found: Cover) -> tuple[list[int], list[int]]:
    keys = SiteKeys(site)
    hour_pairs = _hour_keys(found, zone)
    async with client.pipeline(transaction=False) as pipe:
        for month in found.months:
            pipe.hgetall(keys.profile_month(month))
        for _hour, key in hour_pairs:
            pipe.hget(keys.hour(key), "visits")
        for day in day_keys(found):
            pipe.hget(keys.day(day), "visits")
        replies = await pipe.execute()
    hours = [0] * 24
    weekdays = [0] * 7
    months = replies[: len(found.months)]
    for raw in months:
        for hour in HOURS:
            hours[hour] += int(raw.get(f"h{hour:02d}".encode(), 0))
        for weekday in WEEKDAYS:
            weekdays[weekday - 1] += int(raw.get(f"w{weekday}".encode(), 0))
    hour_replies = replies[len(months): len(months) + len(hour_pairs)]
    for (hour, _key), visits in zip(hour_pairs, hour_replies, strict=True):
        hours[hour] += int(visits or 0)
    for local_day, visits in zip(found.days, replies[len(months) + len(hour_pairs):], strict=True):
        weekdays[local_day.isoweekday() - 1] += int(visits or 0)
    return hours, weekdays


def profile_document(site: str, period: DateRange, hours: list[int], weekdays: list[int]) -> dict[str, Any]:
    return {
        "site": site,
        **period.json(),
        "hours": [{"hour": hour, "visits": hours[hour]} for hour in HOURS],
        "weekdays": [{"weekday": weekday, "visits": weekdays[weekday - 1]} for weekday in WEEKDAYS],
    }
