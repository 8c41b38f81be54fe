"""Metrics plumbing: one registry per app (never the global default), request duration
by route and status, process and build info, and async refreshers that read values from
Redis just before a scrape (``collect()`` itself must stay synchronous and I/O-free)."""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from portal_pulse.core.request_tally import RequestTally

log = logging.getLogger(__name__)

Refresher = Callable[[], Awaitable[None]]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def package_version() -> str:
    try:
        return version("portal-pulse")
    except PackageNotFoundError:
        return "0.0.0"


class ServiceMetrics:
    """The metrics every service has. Services add their own on ``self.registry``."""

    def __init__(self, service: str, scrape_timeout_seconds: float = 0.5) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.scrape_timeout_seconds = scrape_timeout_seconds
        self._refreshers: list[Refresher] = []
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Info("pulse_build", "Build information.", registry=self.registry).info(
            {"version": package_version(), "service": service, "python": platform.python_version()}
        )
        #: pulse_http_request_duration_seconds, and the access log, from one observation.
        self.requests = RequestTally(service, LATENCY_BUCKETS)
        self.registry.register(self.requests)
        self.redis_errors = Counter(
            "pulse_redis_errors_total",
            "Redis calls that failed (timeouts, refused connections, errors).",
            ["service", "operation"],
            registry=self.registry,
        )
        self.redis_up = Gauge(
            "pulse_redis_up", "1 if Redis answered the last readiness or scrape check.",
            ["service"], registry=self.registry,
        )
        self.connections_closed = Counter(
            "pulse_http_connections_closed_total",
            "Connections the server closed itself: over_capacity (the per-process cap was"
            " reached) or header_timeout (a request's headers did not arrive in time).",
            ["service", "reason"], registry=self.registry,
        )
        self.open_connections = Gauge(
            "pulse_http_open_connections", "HTTP connections open in this process.",
            ["service"], registry=self.registry,
        )
        self.scrape_errors = Counter(
            "pulse_scrape_refresh_errors_total",
            "Values that could not be read from Redis at scrape time.",
            ["service"], registry=self.registry,
        )

    def add_refresher(self, refresher: Refresher) -> None:
        """Register an async step run before each scrape (reads Redis with a timeout)."""
        self._refreshers.append(refresher)

    async def render(self) -> bytes:
        for refresher in self._refreshers:
            try:
                await asyncio.wait_for(refresher(), self.scrape_timeout_seconds)
            except Exception as exc:  # a failed read must not fail the scrape
                self.scrape_errors.labels(self.service).inc()
                log.warning("metrics refresh failed: %s", type(exc).__name__)
        return generate_latest(self.registry)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        body = await self.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
