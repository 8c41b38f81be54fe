"""The one middleware both services run: request metrics, CORS and JSON errors in a
single coroutine layer.

Three stacked middlewares cost an extra coroutine and partial each per request, which at
tens of thousands of requests per second costs more than the work they do. Requests
without an ``Origin`` header (server to server, load tools, same-origin GETs) skip the
CORS work entirely. Failures become JSON through ``web.failure_response``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from portal_pulse.core.errors import ApiError
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.web import Handler, cors_headers, error_response, failure_response

#: HTTP/1.0 and 1.1: what aiohttp speaks. A request line claiming HTTP/0.9 or HTTP/2.0 is
#: refused (aiohttp would answer it in the version it claimed).
SUPPORTED_VERSIONS = frozenset({(1, 0), (1, 1)})
_UNSUPPORTED_VERSION = ApiError(400, "unsupported_http_version", "HTTP/1.0 or HTTP/1.1 is expected")


def _refused_preflight() -> web.Response:
    return error_response(ApiError(403, "origin_not_allowed", "this origin is not configured"))


def edge_middleware(
    metrics: ServiceMetrics, origins: Callable[[], Iterable[str]], methods: str = "GET, POST, OPTIONS"
) -> Middleware:
    """Observe every request, answer CORS preflights, add CORS headers for configured
    origins only, and turn every failure into a JSON error with the right status."""
    observe = metrics.observer()
    perf_counter = time.perf_counter

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = perf_counter()
        status = 500
        try:
            origin = request.headers.get("Origin")
            headers = cors_headers(origin, origins(), methods) if origin else None
            response: web.StreamResponse
            if request.version not in SUPPORTED_VERSIONS:
                response = error_response(_UNSUPPORTED_VERSION)
            elif request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
                response = web.Response(status=204, headers=headers) if headers else _refused_preflight()
            else:
                try:
                    response = await handler(request)
                except Exception as exc:
                    response = failure_response(request, exc)
                if headers and not response.prepared:
                    response.headers.update(headers)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            observe(request, status, perf_counter() - started)

    return edge
