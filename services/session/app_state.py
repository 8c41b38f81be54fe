"""Typed keys of everything the session app keeps on itself (no module globals)."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from services.core.clock import Clock
from services.core.settings import Settings
from services.session.event_bus import EventBus
from services.session.metrics import SessionMetrics
from services.session.scheduler import Scheduler
from services.session.store import SessionStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", SessionMetrics)
REDIS = web.AppKey("redis", Redis)
STORE = web.AppKey("store", SessionStore)
BUS = web.AppKey("bus", EventBus)
SCHEDULER = web.AppKey("scheduler", Scheduler)


def now_ms(app: web.Application) -> int:
    return int(app[CLOCK].now() * 1000)
