"""/healthz (the process answers) and /readyz (Redis answers)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from redis.asyncio import Redis

from services.core.metrics import ServiceMetrics
from services.core.redis_conn import is_reachable
from services.core.web import json_response


def add_health_routes(
    app: web.Application,
    client: Callable[[], Redis],
    metrics: Callable[[], ServiceMetrics],
    timeout_seconds: float = 0.5,
) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(request: web.Request) -> web.Response:
        ok = await is_reachable(client(), timeout_seconds)
        metrics().redis_up.labels(metrics().service).set(1 if ok else 0)
        if ok:
            return json_response({"status": "ready", "redis": "up"}, headers={"Cache-Control": "no-store"})
        return json_response(
            {"error": {"code": "unavailable", "message": "redis is not reachable"}},
            status=503,
            headers={"Retry-After": "1", "Cache-Control": "no-store"},
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


def report_redis_up_at_scrape(
    metrics: ServiceMetrics, client: Callable[[], Redis], timeout_seconds: float = 0.3
) -> None:
    """Keep ``pulse_redis_up`` current at every scrape, not only when /readyz is probed
    (under systemd or compose nothing probes /readyz, and the Redis-down alert needs it)."""

    async def refresh() -> None:
        ok = await is_reachable(client(), timeout_seconds)
        metrics.redis_up.labels(metrics.service).set(1 if ok else 0)

    metrics.add_refresher(refresh)
