"""Visits by local hour of day and by weekday over a date range: whole months from the
month profile ``hit.lua`` keeps, the other days from their day profile. One pipelined
read of at most one hash per month or day."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.ranges import Cover, DateRange, day_keys

HOURS = range(24)
WEEKDAYS = range(1, 8)


def _field(raw: dict[bytes, bytes], name: str) -> int:
    return int(raw.get(name.encode(), 0))


async def read_profile(client: Redis, site: str, found: Cover) -> tuple[list[int], list[int]]:
    keys = SiteKeys(site)
    async with client.pipeline(transaction=False) as pipe:
        for month in found.months:
            pipe.hgetall(keys.profile_month(month))
        for day in day_keys(found):
            pipe.hgetall(keys.profile_day(day))
        replies = await pipe.execute()
    hours = [0] * 24
    weekdays = [0] * 7
    for raw in replies[: len(found.months)]:
        for hour in HOURS:
            hours[hour] += _field(raw, f"h{hour:02d}")
        for weekday in WEEKDAYS:
            weekdays[weekday - 1] += _field(raw, f"w{weekday}")
    for local_day, raw in zip(found.days, replies[len(found.months):], strict=True):
        day_hours = [_field(raw, f"h{hour:02d}") for hour in HOURS]
        for hour in HOURS:
            hours[hour] += day_hours[hour]
        weekdays[local_day.isoweekday() - 1] += sum(day_hours)
    return hours, weekdays


def profile_document(site: str, period: DateRange, hours: list[int], weekdays: list[int]) -> dict[str, Any]:
    return {
        "site": site,
        **period.json(),
        "hours": [{"hour": hour, "visits": hours[hour]} for hour in HOURS],
        "weekdays": [{"weekday": weekday, "visits": weekdays[weekday - 1]} for weekday in WEEKDAYS],
    }
