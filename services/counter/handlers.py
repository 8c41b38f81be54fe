"""Public HTTP handlers: hits (JSON and pixel), stats, series, pages, the widget."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import TypeVar

import msgspec
from aiohttp import web

from portal_pulse.core.errors import ApiError, bad_request
from portal_pulse.core.web import JSON_TYPE, decode_json, read_body, require_json_type
from portal_pulse.counter.calendar_keys import local_time
from portal_pulse.counter.hit import CODES, HIT_DECODER, CommitResult, HitBody, Outcome
from portal_pulse.counter.pages import read_page
from portal_pulse.counter.pipeline import parse_body, parse_flag, parse_query, parse_site
from portal_pulse.counter.series import Unit, buckets, parse_moment, read_series, resolve_range, series_key
from portal_pulse.counter.state import CLOCK, METRICS, PIPELINE, READS, REDIS, SERIES_BUDGET, SETTINGS, STATS

HIT_TYPES = (JSON_TYPE, "text/plain")
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, max-age=0"}
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode
SERIES_MAX_WAIT_SECONDS = 1.0
STATIC = files("portal_pulse.counter").joinpath("static")


def counted_header(result: CommitResult) -> dict[str, str]:
    if result.outcome is Outcome.COUNTED:
        return {"X-Pulse-Counted": "1"}
    return {"X-Pulse-Counted": f"0; reason={result.outcome.value}"}


def decode_hit(body: bytes) -> HitBody:
    return decode_json(body, HIT_DECODER)


#: Response headers of an accepted hit, per result (built once).
_HIT_HEADERS = {result: {**NO_STORE, **counted_header(result)} for result in CODES.values()}
STATS_HEADERS = {"Cache-Control": "public, max-age=1"}


def hit_headers(result: CommitResult) -> dict[str, str]:
    headers = _HIT_HEADERS.get(result)
    return headers if headers is not None else {**NO_STORE, **counted_header(result)}


async def post_hit(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    site_name: str | None = None
    kind_name: str | None = None
    try:
        require_json_type(request, HIT_TYPES)
        raw = await read_body(request, settings.counter.max_body_bytes, settings.http.header_timeout_seconds)
        body = decode_hit(raw)
        site_name, kind_name = body.site, body.kind
        with_stats = parse_flag(request.query, "stats") if request.query_string else False
        result = await app[PIPELINE].process(parse_body(settings, body), request)
    except ApiError as exc:
        if exc.status < 500:
            app[METRICS].rejected(site_name, kind_name)
        raise
    headers = hit_headers(result)
    if with_stats:
        site = parse_site(settings, site_name)
        return web.Response(body=await app[STATS].get_body(site), content_type=JSON_TYPE, headers=headers)
    return web.Response(status=204, headers=headers)


async def get_pixel(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    query = request.query
    try:
        parsed = parse_query(settings, query)
        result = await request.app[PIPELINE].process(parsed, request)
    except ApiError as exc:
        if exc.status < 500:
            request.app[METRICS].rejected(query.get("site"), query.get("kind", "pageview"))
        raise
    return web.Response(body=GIF, content_type="image/gif", headers=hit_headers(result))


async def get_stats(request: web.Request) -> web.Response:
    app = request.app
    site = parse_site(app[SETTINGS], request.query.get("site"))
    stats = app[STATS]
    body = stats.fresh(site.name)
    if body is None:
        with app[METRICS].counting_redis_errors("stats"):
            body = await stats.get_body(site)
    return web.Response(body=body, content_type=JSON_TYPE, headers=STATS_HEADERS)


async def get_series(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    query = request.query
    site = parse_site(settings, query.get("site"))
    unit_name = query.get("unit", "day")
    if unit_name not in {u.value for u in Unit}:
        raise bad_request("unit: expected hour, day or month", "invalid_query")
    unit = Unit(unit_name)
    start = parse_moment(query["from"], site.zone, "from", end=False) if "from" in query else None
    end = parse_moment(query["to"], site.zone, "to", end=True) if "to" in query else None
    start, end = resolve_range(unit, local_time(app[CLOCK].now(), site.zone), start, end)
    await within_series_budget(app)

    async def load() -> bytes:
        found = buckets(unit, start, end, site.zone, settings.counter.max_series_buckets)
        return _encode(await read_series(app[REDIS], site.name, unit, found))

    with app[METRICS].counting_redis_errors("series"):
        body = await app[READS].get(series_key(site.name, unit, start, end), load)
    return web.Response(body=body, content_type=JSON_TYPE, headers=STATS_HEADERS)


async def within_series_budget(app: web.Application) -> None:
    """Wait for this read's turn in the process's series budget; 429 if that is too far."""
    wait = app[SERIES_BUDGET].reserve(asyncio.get_running_loop().time(), SERIES_MAX_WAIT_SECONDS)
    if wait is None:  # counted by pulse_http_request_duration_seconds{status="429"}
        raise ApiError(429, "too_many_requests", "too many series reads in this process; retry later",
                       {"Retry-After": "1"})
    if wait:
        await asyncio.sleep(wait)


async def get_page(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    site = parse_site(settings, request.query.get("site"))
    path = request.query.get("path", "")
    if not path or len(path) > settings.counter.max_path_length:
        raise bad_request(f"path: required, at most {settings.counter.max_path_length} characters", "invalid_query")

    async def load() -> bytes:
        return _encode(await read_page(app[REDIS], site.name, path))

    with app[METRICS].counting_redis_errors("pages"):
        body = await app[READS].get(("page", site.name, path), load)
    return web.Response(body=body, content_type=JSON_TYPE, headers=STATS_HEADERS)


def asset_handler(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A static file of the embeddable block (``widget.js``, ``widget.css``), read once when
    the app is built, cached and usable from any page."""
    body = STATIC.joinpath(name).read_bytes()
    headers = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}

    async def get_asset(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    return get_asset
