"""Operator endpoints, behind the admin bearer token (compared in constant time)."""

from __future__ import annotations

from aiohttp import web

from portal_pulse.core.web import JSON_TYPE, decode_json, json_response, read_body, require_json_type, require_token
from portal_pulse.counter.baseline import BASELINE_DECODER, replace_baseline
from portal_pulse.counter.pipeline import parse_site
from portal_pulse.counter.state import REDIS, SETTINGS, STATS

MAX_BASELINE_BYTES = 65536


async def put_baseline(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    require_token(request, settings.admin_token)  # before anything else: no site enumeration
    site = parse_site(settings, request.match_info["site"])
    require_json_type(request, (JSON_TYPE,))
    body = await read_body(request, MAX_BASELINE_BYTES, settings.http.header_timeout_seconds)
    baseline = decode_json(body, BASELINE_DECODER).validate()
    await replace_baseline(request.app[REDIS], site.name, baseline)
    request.app[STATS].forget(site.name)
    return json_response(
        {"site": site.name, "total": baseline.total, "pageviews_total": baseline.pageviews_total,
         "months": dict(sorted(baseline.months.items())), "days": dict(sorted(baseline.days.items()))},
        headers={"Cache-Control": "no-store"},
    )
