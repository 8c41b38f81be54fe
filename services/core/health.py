"""The operations routes every service has: /healthz (the process answers), /readyz
(Redis answers), /metrics, and its OpenAPI document at /openapi.json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from portal_pulse.core.app_keys import REDIS, SETTINGS
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.redis_conn import is_reachable
from portal_pulse.core.request_tally import summary_ctx
from portal_pulse.core.web import json_response

NO_STORE = {"Cache-Control": "no-store"}


def not_ready(message: str, **detail: Any) -> web.Response:
    return json_response(
        {"error": {"code": "unavailable", "message": message}, **detail},
        status=503,
        headers={"Retry-After": "1", **NO_STORE},
    )


def add_ops_routes(
    app: web.Application,
    metrics: ServiceMetrics,
    openapi: dict[str, Any],
    timeout_seconds: float = 0.5,
    refusing: Callable[[bool], bool] = lambda pinged: False,
    stale_tasks: Callable[[], list[str]] = list,
) -> None:
    """Register the operations routes. ``pulse_redis_up`` is refreshed by /readyz and at
    every scrape: outside Kubernetes nothing probes /readyz, and the Redis-down alert
    needs a current value. ``refusing(pinged)`` says the service's storage circuit
    breaker is open (it refuses work for a moment after storage failed): not ready
    either; a successful PING closes it once its open period is over. /readyz also fails
    while ``stale_tasks()`` names a background task that has stopped making progress
    (``core.supervise``)."""
    document = msgspec.json.encode(openapi)

    async def redis_up() -> bool:
        ok = await is_reachable(app[REDIS], timeout_seconds)
        metrics.redis_up.labels(metrics.service).set(1 if ok else 0)
        return ok

    async def refresh_redis_up() -> None:
        await redis_up()

    async def healthz(request: web.Request) -> web.Response:
        return json_response({"status": "ok"}, headers=NO_STORE)

    async def readyz(request: web.Request) -> web.Response:
        up = await redis_up()
        if not up:
            return not_ready("redis is not reachable")
        if refusing(up):
            return not_ready("storage failed a moment ago; retry shortly")
        stale = stale_tasks()
        if stale:
            return not_ready(f"background task not making progress: {', '.join(stale)}", stale_tasks=stale)
        return json_response({"status": "ready", "redis": "up"}, headers=NO_STORE)

    async def get_openapi(request: web.Request) -> web.Response:
        return web.Response(
            body=document, content_type="application/json", headers={"Cache-Control": "public, max-age=300"}
        )

    metrics.add_refresher(refresh_redis_up)
    settings = app[SETTINGS]
    if settings.access_log == "summary":
        app.cleanup_ctx.append(summary_ctx(metrics.requests, settings.access_log_interval_seconds))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics.handle_metrics)
    app.router.add_get("/openapi.json", get_openapi)
