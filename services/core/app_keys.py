"""Typed app keys every service holds: its settings, its clock and its Redis client.

Each service adds its own keys next to these; sharing them lets core's operations routes
(health, readiness, metrics) read the client without callbacks.
"""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from portal_pulse.core.clock import Clock
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
REDIS = web.AppKey("redis", Redis)
SERVICE_METRICS = web.AppKey("service_metrics", ServiceMetrics)
