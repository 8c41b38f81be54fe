"""The statistics routes' part of the counter's OpenAPI document."""

from __future__ import annotations

from typing import Any

from portal_pulse.core.settings import Settings
from portal_pulse.counter.dimensions import DIMENSIONS
from portal_pulse.counter.top import MAX_LIMIT

JSONDict = dict[str, Any]
DATE = {"type": "string", "format": "date",
        "description": "a local date in the site's zone (a date-time is cut to its date); default: this month"}
TOKEN = {"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "the site's read token (or Authorization: Bearer) when the site has one"}


def _error(description: str) -> JSONDict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _row(properties: JSONDict) -> JSONDict:
    return {"type": "object", "required": list(properties), "properties": properties, "additionalProperties": False}


COUNT = {"type": "integer", "minimum": 0}
NULLABLE_DATE = {"type": "string", "format": "date", "nullable": True}


def statistics_schemas() -> JSONDict:
    return {
        "Top": _row({
            "site": {"type": "string"},
            "dimension": {"type": "string", "enum": list(DIMENSIONS)},
            "from": NULLABLE_DATE,
            "to": NULLABLE_DATE,
            "rows": {"type": "array", "items": _row({"key": {"type": "string"}, "visits": COUNT,
                                                     "pageviews": COUNT})},
        }),
        "Profile": _row({
            "site": {"type": "string"},
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "hours": {"type": "array", "items": _row({"hour": COUNT, "visits": COUNT})},
            "weekdays": {"type": "array", "items": _row({"weekday": COUNT, "visits": COUNT})},
        }),
    }


def statistics_paths(settings: Settings) -> JSONDict:
    site = {"name": "site", "in": "query", "required": True,
            "schema": {"type": "string", "enum": [s.name for s in settings.sites]}}
    span = [{"name": "from", "in": "query", "schema": DATE}, {"name": "to", "in": "query", "schema": DATE}]
    top_params = [
        site,
        {"name": "dimension", "in": "query", "required": True, "schema": {"type": "string", "enum": list(DIMENSIONS)}},
        *span,
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                                     "default": 10}},
        {"name": "legacy", "in": "query", "schema": {"type": "string", "enum": ["1", "0", "true", "false"]},
         "description": "1: the figures imported from the old CMS (all-time visits; from, to and pageviews "
                        "are null and 0)"},
        TOKEN,
    ]
    errors = {"400": _error("bad parameters"), "401": _error("the site's read token is missing or wrong"),
              "404": _error("the site is not configured"), "503": _error("Redis is not answering")}
    csv = {"text/csv": {"schema": {"type": "string"}}}
    keep = f"Each day and month keeps its top {settings.counter.top_entries} keys per dimension plus (other)."
    return {
        "/v1/stats/top": {"get": {
            "summary": "Top keys of a dimension over a date range, by visits",
            "description": keep + " Bots have pageviews (hits) only.",
            "parameters": top_params,
            "responses": {"200": {"description": "the rows",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Top"}}}},
                          **errors},
        }},
        "/v1/stats/top.csv": {"get": {
            "summary": "The same top list as CSV (UTF-8 with BOM, header key,visits,pageviews)",
            "parameters": top_params,
            "responses": {"200": {"description": "CSV", "content": csv}, **errors},
        }},
        "/v1/stats/profile": {"get": {
            "summary": "Visits by local hour of day and ISO weekday (1 Monday .. 7 Sunday) over a date range",
            "parameters": [site, *span, TOKEN],
            "responses": {"200": {"description": "the profile", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}}}, **errors},
        }},
        "/v1/stats/export.csv": {"get": {
            "summary": "The series as CSV (UTF-8 with BOM, header start,visits,pageviews)",
            "parameters": [site, {"name": "unit", "in": "query",
                                  "schema": {"type": "string", "enum": ["hour", "day", "month"], "default": "day"}},
                           {"name": "from", "in": "query", "schema": {"type": "string"}},
                           {"name": "to", "in": "query", "schema": {"type": "string"}}, TOKEN],
            "responses": {"200": {"description": "CSV", "content": csv}, **errors},
        }},
        "/stats": {"get": {
            "summary": "The statistics page (Vietnamese; lang=en for English)",
            "parameters": [site, {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["vi", "en"]}},
                           *span, TOKEN],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                          **errors},
        }},
        "/stats.css": {"get": {"summary": "The statistics page's stylesheet",
                               "responses": {"200": {"description": "CSS",
                                                     "content": {"text/css": {"schema": {"type": "string"}}}}}}},
    }
