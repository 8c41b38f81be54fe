"""The statistics API: top lists, the hour/weekday profile and the CSV exports.

Every read is per site and behind the site's read token when it has one; answers are
cached like ``/v1/stats`` (``counter.stats_cache_seconds``, single flight)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web

from portal_pulse.core.errors import bad_request
from portal_pulse.core.settings import SiteSettings
from portal_pulse.core.web import json_response
from portal_pulse.counter.access import require_read_access
from portal_pulse.counter.calendar_keys import local_time
from portal_pulse.counter.csv_export import csv_bytes, csv_response
from portal_pulse.counter.pipeline import parse_flag, parse_site
from portal_pulse.counter.profile import profile_document, read_profile
from portal_pulse.counter.ranges import DateRange, cover, parse_range
from portal_pulse.counter.series import Unit, buckets, parse_moment, read_series, resolve_range
from portal_pulse.counter.shared_reads import SharedReads
from portal_pulse.counter.state import CLOCK, FOLDER, METRICS, REDIS, SETTINGS
from portal_pulse.counter.top import parse_dimension, parse_limit, read_tops, top_document

READS: web.AppKey[SharedReads[Any]] = web.AppKey("statistics_reads")
CACHE_HEADERS = {"Cache-Control": "private, max-age=1"}


async def reads_ctx(app: web.Application) -> AsyncIterator[None]:
    cache: SharedReads[Any] = SharedReads(app[CLOCK], app[SETTINGS].counter.stats_cache_seconds, max_entries=256)
    app[READS] = cache
    yield
    await cache.close()


def readable_site(request: web.Request) -> SiteSettings:
    site = parse_site(request.app[SETTINGS], request.query.get("site"))
    require_read_access(request, site)
    return site


def requested_range(request: web.Request, site: SiteSettings) -> DateRange:
    now = local_time(request.app[CLOCK].now(), site.zone)
    return parse_range(request.query.get("from"), request.query.get("to"), now, site.zone)


async def tops_for(app: web.Application, site: SiteSettings, dimensions: tuple[str, ...], period: DateRange | None,
                   limit: int) -> dict[str, dict[str, Any]]:
    """Top lists over ``period`` (``None``: the legacy, imported all-time figures), one
    document per dimension, read in one round trip."""
    client = app[REDIS]
    found = None if period is None else cover(period, app[SETTINGS].counter.max_series_buckets)

    async def load() -> dict[str, dict[str, Any]]:
        if found is not None:  # every acknowledged hit counted first (the legacy figures are imported)
            await app[FOLDER].fold(site.name)
        tops = await read_tops(client, site.name, dimensions, found, limit)
        return {dimension: top_document(site.name, dimension, period, rows) for dimension, rows in tops.items()}

    with app[METRICS].counting_redis_errors("top"):
        documents: dict[str, dict[str, Any]] = await app[READS].get(("top", site.name, dimensions, period, limit), load)
    return documents


async def top_of(request: web.Request) -> dict[str, Any]:
    """The ``/v1/stats/top`` document the query asks for (also behind ``top.csv``)."""
    query = request.query
    site = readable_site(request)
    dimension = parse_dimension(query.get("dimension"))
    limit = parse_limit(query.get("limit"))
    period = None if parse_flag(query, "legacy") else requested_range(request, site)
    return (await tops_for(request.app, site, (dimension,), period, limit))[dimension]


async def get_top(request: web.Request) -> web.Response:
    return json_response(await top_of(request), headers=CACHE_HEADERS)


async def get_top_csv(request: web.Request) -> web.Response:
    document = await top_of(request)
    rows = [(row["key"], row["visits"], row["pageviews"]) for row in document["rows"]]
    body = csv_bytes(("key", "visits", "pageviews"), rows)
    return csv_response(body, f"{document['site']}-{document['dimension']}.csv")


async def profile_for(app: web.Application, site: SiteSettings, period: DateRange) -> dict[str, Any]:
    found = cover(period, app[SETTINGS].counter.max_series_buckets)
    client = app[REDIS]

    async def load() -> dict[str, Any]:
        hours, weekdays = await read_profile(client, site.name, found)
        return profile_document(site.name, period, hours, weekdays)

    with app[METRICS].counting_redis_errors("profile"):
        document: dict[str, Any] = await app[READS].get(("profile", site.name, period), load)
    return document


async def get_profile(request: web.Request) -> web.Response:
    site = readable_site(request)
    return json_response(await profile_for(request.app, site, requested_range(request, site)), headers=CACHE_HEADERS)


async def series_for(app: web.Application, site: SiteSettings, unit: Unit, start: datetime | None,
                     end: datetime | None) -> dict[str, Any]:
    """The ``/v1/stats/series`` document (baseline merged) for ``unit`` between two local moments."""
    start, end = resolve_range(unit, local_time(app[CLOCK].now(), site.zone), start, end)
    found = buckets(unit, start, end, site.zone, app[SETTINGS].counter.max_series_buckets)
    client = app[REDIS]

    async def load() -> dict[str, Any]:
        return await read_series(client, site.name, unit, found)

    with app[METRICS].counting_redis_errors("series"):
        document: dict[str, Any] = await app[READS].get(("series", site.name, unit, found[0], found[-1]), load)
    return document


async def get_export_csv(request: web.Request) -> web.Response:
    site = readable_site(request)
    query = request.query
    unit_name = query.get("unit", "day")
    if unit_name not in {u.value for u in Unit}:
        raise bad_request("unit: expected hour, day or month", "invalid_query")
    start = parse_moment(query["from"], site.zone, "from", end=False) if "from" in query else None
    end = parse_moment(query["to"], site.zone, "to", end=True) if "to" in query else None
    series = await series_for(request.app, site, Unit(unit_name), start, end)
    rows = [(bucket["start"], bucket["visits"], bucket["pageviews"]) for bucket in series["buckets"]]
    return csv_response(csv_bytes(("start", "visits", "pageviews"), rows), f"{site.name}-{unit_name}.csv")


def add_statistics_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(reads_ctx)
    app.router.add_get("/v1/stats/top", get_top)
    app.router.add_get("/v1/stats/top.csv", get_top_csv)
    app.router.add_get("/v1/stats/profile", get_profile)
    app.router.add_get("/v1/stats/export.csv", get_export_csv)

