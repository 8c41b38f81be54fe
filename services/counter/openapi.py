"""The OpenAPI 3.0 document of the counter service. It is fuzzed (schemathesis), so every
schema and status code here must be what the service really answers."""

from __future__ import annotations

from typing import Any

from portal_pulse.core.metrics import package_version
from portal_pulse.core.settings import Settings
from portal_pulse.counter.openapi_statistics import statistics_paths, statistics_schemas

JSONDict = dict[str, Any]


def _error(description: str, headers: JSONDict | None = None) -> JSONDict:
    response: JSONDict = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait before retrying"}}
COUNTED = {
    "X-Pulse-Counted": {
        "schema": {"type": "string", "enum": ["1", "0; reason=bot", "0; reason=duplicate", "0; reason=rate_limited",
                                                "0; reason=origin"]},
        "description": "1 if the hit was counted, else 0 and the reason it was not",
    }
}
E400 = _error("bad input: malformed JSON or query, wrong types, unknown kind, over-long field")
E401 = _error("missing or wrong bearer token",
              {"WWW-Authenticate": {"schema": {"type": "string"}}})
E403 = _error("the Origin header names an origin not configured for the site")
E404 = _error("the site is not configured")
E413 = _error("request body too large")
E415 = _error("unsupported content type")
E429_SERIES = _error("over the process's series budget (counter.max_series_per_second, after waiting up to 1 s)",
                     RETRY_AFTER)
E503 = _error("Redis is not answering; nothing was recorded. Retry after Retry-After seconds.", RETRY_AFTER)


def _site_schema(settings: Settings) -> JSONDict:
    """Sites come from configuration, so the document lists them."""
    return {"type": "string", "enum": [site.name for site in settings.sites], "description": "a configured site"}


def _site_param(settings: Settings) -> JSONDict:
    return {"name": "site", "in": "query", "required": True, "schema": _site_schema(settings)}


MOMENT = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
    "description": "ISO 8601 date or date-time; without an offset it is read in the site's zone",
}


def _int(minimum: int = 0) -> JSONDict:
    return {"type": "integer", "minimum": minimum}


def _object(properties: JSONDict) -> JSONDict:
    return {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}


def schemas(settings: Settings) -> JSONDict:
    limits = settings.counter
    return {
        "Error": _object({"error": _object({"code": {"type": "string"}, "message": {"type": "string"}})}),
        "Hit": {
            "type": "object",
            "required": ["site"],
            "properties": {
                "site": _site_schema(settings),
                "kind": {"type": "string", "enum": ["pageview", "heartbeat", "download"], "default": "pageview"},
                "path": {"type": "string", "minLength": 1, "maxLength": limits.max_path_length, "default": "/"},
                "visitor": {"type": "string", "nullable": True, "maxLength": limits.max_visitor_length,
                            "description": "opaque first-party visitor id; without it a daily salted hash is used"},
                "member": {"type": "boolean", "default": False, "description": "the user is signed in"},
                "referrer": {"type": "string", "nullable": True, "maxLength": limits.max_referrer_length},
                "id": {"type": "string", "nullable": True, "maxLength": limits.max_event_id_length,
                       "description": "event id, for clients without seq: a re-sent hit of the visitor with one of "
                                      f"its last {limits.event_ids_per_visitor} ids is counted once"},
                "seq": {"type": "integer", "nullable": True, "minimum": 0, "maximum": 2**53 - 1,
                        "description": "the visitor's hit number (1, 2, 3...): a re-sent hit with one of the 64 "
                                       "numbers up to the highest seen is counted once (the id is then ignored)"},
                "query": {"type": "string", "nullable": True,
                          "description": "the page URL's query; only utm_source, utm_medium, utm_campaign are read"},
            },
            "description": "Unknown fields are ignored.",
        },
        "Stats": _object({
            "site": {"type": "string"},
            "timezone": {"type": "string"},
            "as_of": {"type": "string", "format": "date-time"},
            "online": _int(),
            "today": _int(),
            "this_month": _int(),
            "last_month": _int(),
            "total": _int(),
            "online_breakdown": _object({"members": _int(), "guests": _int(), "bots": _int()}),
            "pageviews": _object({"today": _int(), "this_month": _int(), "last_month": _int(), "total": _int()}),
            "visitors": _object({"today": _int(), "this_month": _int()}),
        }),
        "Series": _object({
            "site": {"type": "string"},
            "unit": {"type": "string", "enum": ["hour", "day", "month"]},
            "buckets": {"type": "array", "items": _object({
                "start": {"type": "string", "description": "local hour (ISO date-time with offset), day or month"},
                "visits": _int(),
                "pageviews": _int(),
            })},
        }),
        "Page": _object({"site": {"type": "string"}, "path": {"type": "string"}, "views": _int(),
                         "downloads": _int()}),
        "Baseline": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "total": {"type": "integer", "minimum": 0, "maximum": 10**15, "default": 0},
                "pageviews_total": {"type": "integer", "minimum": 0, "maximum": 10**15, "default": 0},
                "months": {"type": "object", "maxProperties": 1200,
                           "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 10**15},
                           "description": "visits per past month, keys YYYY-MM"},
                "days": {"type": "object", "maxProperties": 36600,
                         "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 10**15},
                         "description": "visits per past day, keys YYYY-MM-DD"},
            },
        },
        "StoredBaseline": _object({
            "site": {"type": "string"},
            "total": _int(),
            "pageviews_total": _int(),
            "months": {"type": "object", "additionalProperties": _int()},
            "days": {"type": "object", "additionalProperties": _int()},
        }),
    }


def _json(ref: str, description: str, headers: JSONDict | None = None) -> JSONDict:
    response: JSONDict = {"description": description,
                          "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    if headers:
        response["headers"] = headers
    return response


def _text(description: str, media: str) -> JSONDict:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def paths(settings: Settings) -> JSONDict:
    hit_body = {"$ref": "#/components/schemas/Hit"}
    return {
        "/v1/hit": {"post": {
            "summary": "Record a hit",
            "description": "Answers only once the hit is recorded in Redis. A hit that is not counted "
                           "(bot, duplicate event id, rate limited) still answers 2xx with X-Pulse-Counted.",
            "parameters": [{"name": "stats", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": ["1", "0", "true", "false"]},
                            "description": "1: answer 200 with the site's stats"}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": hit_body},
                "text/plain": {"schema": hit_body, "description": "the same JSON, for navigator.sendBeacon"},
            }},
            "responses": {
                "200": _json("Stats", "recorded (with ?stats=1)", COUNTED),
                "204": {"description": "recorded", "headers": COUNTED},
                "400": E400, "403": E403, "404": E404, "413": E413, "415": E415, "503": E503,
            },
        }},
        "/v1/hit.gif": {"get": {
            "summary": "Record a hit from a page without JavaScript",
            "parameters": [
                _site_param(settings),
                {"name": "path", "in": "query", "schema": {"type": "string", "minLength": 1}},
                {"name": "kind", "in": "query", "schema": {"type": "string",
                                                           "enum": ["pageview", "heartbeat", "download"]}},
                {"name": "member", "in": "query", "schema": {"type": "string", "enum": ["1", "0", "true", "false"]}},
                {"name": "id", "in": "query", "schema": {"type": "string"}},
                {"name": "seq", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}},
                {"name": "visitor", "in": "query", "schema": {"type": "string"}},
                {"name": "referrer", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "a 1x1 GIF, never cached", "headers": COUNTED,
                        "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}}},
                "400": E400, "403": E403, "404": E404, "503": E503,
            },
        }},
        "/v1/stats": {"get": {
            "summary": "The five figures and their breakdowns (cached at most one second)",
            "parameters": [_site_param(settings)],
            "responses": {"200": _json("Stats", "the site's figures"), "400": E400, "404": E404, "503": E503},
        }},
        "/v1/stats/series": {"get": {
            "summary": "Visits and pageviews per local hour, day or month",
            "description": "from and to are ISO dates or date-times in the site's zone (inclusive, default: the "
                           "last 24 hours, 30 days or 12 months). 400 when from is after to or the range holds "
                           f"more than {settings.counter.max_series_buckets} buckets. Month and day buckets "
                           "include the baseline's months and days. Answers are shared between callers for up to "
                           f"stats_cache_seconds; each process serves {settings.counter.max_series_per_second:g} "
                           "series a second (bursts of as many), later ones wait up to 1 s, then 429.",
            "parameters": [
                _site_param(settings),
                {"name": "unit", "in": "query", "schema": {"type": "string", "enum": ["hour", "day", "month"],
                                                            "default": "day"}},
                {"name": "from", "in": "query", "schema": MOMENT},
                {"name": "to", "in": "query", "schema": MOMENT},
            ],
            "responses": {"200": _json("Series", "one bucket per unit"), "400": E400, "404": E404, "429": E429_SERIES,
                          "503": E503},
        }},
        "/v1/badge.svg": {"get": {
            "summary": "The five figures as an SVG image, for pages that run no script (cached like /v1/stats)",
            "parameters": [_site_param(settings),
                           {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["vi", "en"],
                                                                      "default": "vi"}}],
            "responses": {"200": _text("SVG image", "image/svg+xml"), "400": E400, "404": E404, "503": E503},
        }},
        "/v1/pages": {"get": {
            "summary": "Views and downloads of one path (each once per visit)",
            "parameters": [_site_param(settings), {"name": "path", "in": "query", "required": True,
                                           "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": _json("Page", "the path's figures"), "400": E400, "404": E404, "503": E503},
        }},
        "/v1/admin/sites/{site}/baseline": {"put": {
            "summary": "Replace the site's baseline of imported legacy figures",
            "description": "Idempotent: the body replaces the whole baseline (it is not added to the previous "
                           "one). The total is added to `total`, pageviews_total to `pageviews.total`, and each "
                           "month to `this_month`/`last_month` and month series.",
            "security": [{"bearer": []}],
            "parameters": [{"name": "site", "in": "path", "required": True, "schema": _site_schema(settings)}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Baseline"}}}},
            "responses": {"200": _json("StoredBaseline", "the stored baseline"), "400": E400, "401": E401,
                          "404": E404, "413": E413, "415": E415, "503": E503},
        }},
        "/widget.js": {"get": {"summary": "The embeddable counter block",
                               "responses": {"200": _text("JavaScript", "text/javascript")}}},
        "/widget.css": {"get": {"summary": "The counter block's stylesheet (linked by widget.js)",
                                "responses": {"200": _text("CSS", "text/css")}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3.0",
                                                        "content": {"application/json": {"schema": {}}}}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": _text("Prometheus text format", "text/plain")}}},
        "/healthz": {"get": {"summary": "The process answers",
                             "responses": {"200": {"description": "alive",
                                                   "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/readyz": {"get": {"summary": "Redis answers",
                            "responses": {"200": {"description": "ready",
                                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                                          "503": E503}}},
    }


def openapi_document(settings: Settings) -> JSONDict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "portal-pulse counter", "version": package_version(),
                 "description": "Visit counters for portals: visits, pageviews, online visitors, per-page views."},
        "paths": {**paths(settings), **statistics_paths(settings)},
        "components": {
            "schemas": {**schemas(settings), **statistics_schemas()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
