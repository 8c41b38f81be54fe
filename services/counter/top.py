"""Top lists of a statistics dimension over a date range: the bounded per-day and
per-month hashes ``hit.lua`` keeps (``SiteKeys.top_counts``), added up (one pipelined
read). Each bucket lists its top keys by visits (Space-Saving): a listed key's figures
are exact since it was admitted, and what a key counted while not listed (or before it
was evicted) is in that bucket's ``(other)``; so a range's figure of a key is exact when
it stayed listed in every bucket of the range, and the rows always add up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from portal_pulse.core.errors import bad_request
from portal_pulse.counter.dimensions import DIMENSIONS
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.ranges import Cover, DateRange, day_keys

Row = dict[str, Any]
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10


def parse_dimension(name: str | None) -> str:
    if name not in DIMENSIONS:
        raise bad_request(f"dimension: expected one of {', '.join(DIMENSIONS)}", "invalid_query")
    return name


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise bad_request(f"limit: expected a whole number from 1 to {MAX_LIMIT}", "invalid_query")
    return int(text)


def sorted_rows(visits: dict[str, int], pageviews: dict[str, int], limit: int) -> list[Row]:
    keys = set(visits) | set(pageviews)
    ranked = sorted(keys, key=lambda key: (-visits.get(key, 0), -pageviews.get(key, 0), key))
    return [{"key": key, "visits": visits.get(key, 0), "pageviews": pageviews.get(key, 0)} for key in ranked[:limit]]


def _key(field: bytes | str) -> str:
    return field.decode("utf-8", "replace") if isinstance(field, bytes) else field


def _add(into: dict[str, int], raw: Mapping[bytes | str, bytes | str]) -> None:
    for field, value in raw.items():
        try:
            count = int(value)
        except ValueError:  # an imported hash is written by another tool: skip junk
            continue
        key = _key(field)
        into[key] = into.get(key, 0) + count


def top_row(value: bytes | str) -> tuple[int, int] | None:
    """Visits and pageviews of one ``top_counts`` value, ``<visits>:<pageviews>:<score>``
    (``None``: not such a value)."""
    parts = (value.decode("ascii", "replace") if isinstance(value, bytes) else value).split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1])


def _add_rows(visits: dict[str, int], pageviews: dict[str, int], raw: Mapping[bytes | str, bytes | str]) -> None:
    for field, value in raw.items():
        counts = top_row(value)
        if counts is None:
            continue
        key = _key(field)
        visits[key] = visits.get(key, 0) + counts[0]
        pageviews[key] = pageviews.get(key, 0) + counts[1]


async def read_tops(
    client: Redis, site: str, dimensions: Sequence[str], found: Cover | None, limit: int
) -> dict[str, list[Row]]:
    """The top lists of ``dimensions`` over ``found`` (``None``: the legacy, all-time
    imported figures), in one pipelined read."""
    keys = SiteKeys(site)
    buckets = [] if found is None else (
        [("month", month) for month in found.months] + [("day", day) for day in day_keys(found)])
    async with client.pipeline(transaction=False) as pipe:
        for dimension in dimensions:
            if found is None:
                pipe.hgetall(keys.legacy_top(dimension))
            for unit, bucket in buckets:
                pipe.hgetall(keys.top_counts(unit, bucket, dimension))
        replies = iter(await pipe.execute())
    tops: dict[str, list[Row]] = {}
    for dimension in dimensions:
        visits: dict[str, int] = {}
        pageviews: dict[str, int] = {}
        if found is None:
            _add(visits, next(replies))
        for _bucket in buckets:
            _add_rows(visits, pageviews, next(replies))
        tops[dimension] = sorted_rows(visits, pageviews, limit)
    return tops


def top_document(site: str, dimension: str, period: DateRange | None, rows: list[Row]) -> dict[str, Any]:
    span = period.json() if period is not None else {"from": None, "to": None}
    return {"site": site, "dimension": dimension, **span, "rows": rows}
