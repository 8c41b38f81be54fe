"""The OpenAPI 3.0 document of the session service. It is fuzzed (schemathesis), so it
lists every status each operation can answer and the exact shapes it answers with."""

from __future__ import annotations

from typing import Any

from portal_pulse.session.payloads import (
    MAX_IDLE_SECONDS,
    MAX_LIFETIME_SECONDS,
    MAX_PROMPT_SECONDS,
    MAX_SUBJECT_LENGTH,
    MIN_IDLE_SECONDS,
)

JSON = "application/json"


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
UNAVAILABLE = _error("Redis is not answering; retry later", RETRY_AFTER)
NOT_FOUND = _error("no such session (unknown or malformed id)")
GONE = _error("the session has expired or was ended; it cannot be revived")
TOO_LARGE = _error("request body too large")
SESSION = {
    "description": "the session",
    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Session"}}},
}
LINKS = {
    name: {"operationId": operation, "parameters": {"id": "$response.body#/id"}}
    for name, operation in [
        ("GetSession", "getSession"), ("ReportActivity", "reportActivity"), ("KeepAlive", "keepAlive"),
        ("EndSession", "endSession"), ("SessionEvents", "sessionEvents"),
    ]
}
ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "the session id returned at creation",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Session": {
        "type": "object",
        "required": ["id", "state", "remaining", "prompt_in", "idle_timeout", "prompt_seconds", "server_time",
                     "version"],
        "properties": {
            "id": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "prompt", "expired", "ended"]},
            "remaining": {"type": "number", "minimum": 0, "description": "seconds until the session expires"},
            "prompt_in": {"type": "number", "minimum": 0, "description": "seconds until the prompt (0: open)"},
            "idle_timeout": {"type": "integer", "minimum": 1},
            "prompt_seconds": {"type": "integer", "minimum": 1},
            "server_time": {"type": "number", "description": "the server's clock, seconds since the epoch"},
            "version": {"type": "integer", "minimum": 0, "description": (
                "goes up with every change of the session (create, activity, keepalive, prompt, expiry, "
                "logout): of two views, the one with the higher version is newer, whatever the clocks of "
                "the processes that answered say")},
        },
    },
    "SessionEvent": {
        "type": "object",
        "description": "one server-sent event; keep-alive comments (`: ping`) are not events",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": ["state", "prompt", "extended", "expired", "ended"]},
            "data": {"type": "string", "description": "JSON: the Session object; transitions add `type`"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    },
    "CreateSession": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "subject": {"type": "string", "maxLength": MAX_SUBJECT_LENGTH,
                        "description": "the portal's reference for the user, echoed in events"},
            "idle_timeout": {"type": "integer", "minimum": MIN_IDLE_SECONDS, "maximum": MAX_IDLE_SECONDS},
            "prompt_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_PROMPT_SECONDS,
                               "description": "must be shorter than idle_timeout"},
            "max_lifetime": {"type": "integer", "minimum": 0, "maximum": MAX_LIFETIME_SECONDS,
                             "description": "absolute lifetime in seconds from creation, whatever the activity"
                                            " (default: session.max_lifetime_seconds, 12 h); 0 for none"},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    id_params = [ID_PARAMETER]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "portal-pulse session keep-alive service",
            "version": "1",
            "description": "Server-authoritative inactivity prompts. Session ids are capabilities: "
            "keep them out of URLs that are logged.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/sessions": {
                "post": {
                    "operationId": "createSession",
                    "summary": "create a session (the portal back end, at sign-in)",
                    "security": [{"bearerAuth": []}],
                    "requestBody": {
                        "required": False,
                        "content": {JSON: {"schema": {"$ref": "#/components/schemas/CreateSession"}}},
                    },
                    "responses": {
                        "201": {**SESSION, "description": "created", "links": LINKS},
                        "400": _error("invalid body or timing"),
                        "401": _error("missing or wrong bearer token"),
                        "413": TOO_LARGE,
                        "415": _error("the body is not application/json"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/v1/sessions/{id}": {
                "parameters": id_params,
                "get": {
                    "operationId": "getSession",
                    "summary": "the session's state; never extends it",
                    "responses": {"200": SESSION, "404": NOT_FOUND, "503": UNAVAILABLE},
                },
                "delete": {
                    "operationId": "endSession",
                    "summary": "logout",
                    "responses": {
                        "204": {"description": "ended"},
                        "404": NOT_FOUND,
                        "410": GONE,
                        "503": UNAVAILABLE,
                    },
                },
            },
            "/v1/sessions/{id}/activity": {
                "parameters": id_params,
                "post": {
                    "operationId": "reportActivity",
                    "summary": "the page saw user activity: extends an active session",
                    "responses": {
                        "200": SESSION,
                        "404": NOT_FOUND,
                        "409": _error("the prompt is open: only the keep-alive click extends the session"),
                        "410": GONE,
                        "413": TOO_LARGE,
                        "503": UNAVAILABLE,
                    },
                },
            },
            "/v1/sessions/{id}/keepalive": {
                "parameters": id_params,
                "post": {
                    "operationId": "keepAlive",
                    "summary": "the click: extends an active or prompting session",
                    "responses": {
                        "200": SESSION,
                        "404": NOT_FOUND,
                        "410": GONE,
                        "413": TOO_LARGE,
                        "503": UNAVAILABLE,
                    },
                },
            },
            "/v1/sessions/{id}/events": {
                "parameters": id_params,
                "get": {
                    "operationId": "sessionEvents",
                    "summary": "server-sent events: a `state` snapshot, then `created`, `prompt`, `extended`, "
                    "`expired`, `ended` as they happen (data: the session object plus `type`)",
                    "responses": {
                        "200": {"description": "event stream",
                                "content": {"text/event-stream": {
                                    "schema": {"$ref": "#/components/schemas/SessionEvent"}}}},
                        "404": NOT_FOUND,
                        "429": _error("too many open streams for this session", RETRY_AFTER),
                        "503": UNAVAILABLE,
                    },
                },
            },
            "/session.js": {"get": {"operationId": "pageClient", "summary": "the page client", "responses": {
                "200": {"description": "script", "content": {"application/javascript": {"schema": {"type": "string"}}}}
            }}},
            "/session.css": {"get": {"operationId": "pageClientStyles", "summary": "the prompt's stylesheet",
                                     "responses": {"200": {"description": "stylesheet", "content": {
                                         "text/css": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "this document", "responses": {
                "200": {"description": "OpenAPI 3.0 document", "content": {JSON: {"schema": {"type": "object"}}}}
            }}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics", "responses": {
                "200": {"description": "text format", "content": {"text/plain": {"schema": {"type": "string"}}}}
            }}},
            "/healthz": {"get": {"operationId": "healthz", "summary": "the process answers", "responses": {
                "200": {"description": "alive", "content": {JSON: {"schema": {"type": "object"}}}}
            }}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Redis answers", "responses": {
                "200": {"description": "ready", "content": {JSON: {"schema": {"type": "object"}}}},
                "503": UNAVAILABLE,
            }}},
        },
    }
