"""Typed keys of everything the session app keeps on itself (no module globals); the
shared ones (settings, clock, Redis) come from ``core.app_keys``."""

from __future__ import annotations

from aiohttp import web

from portal_pulse.core.app_keys import CLOCK, REDIS, SETTINGS
from portal_pulse.core.supervise import Supervisor
from portal_pulse.session.event_bus import EventBus
from portal_pulse.session.metrics import SessionMetrics
from portal_pulse.session.scheduler import Scheduler
from portal_pulse.session.store import SessionStore

METRICS = web.AppKey("metrics", SessionMetrics)
STORE = web.AppKey("store", SessionStore)
BUS = web.AppKey("bus", EventBus)
SCHEDULER = web.AppKey("scheduler", Scheduler)
SUPERVISOR = web.AppKey("supervisor", Supervisor)


def now_ms(app: web.Application) -> int:
    return int(app[CLOCK].now() * 1000)


__all__ = ["BUS", "CLOCK", "METRICS", "REDIS", "SCHEDULER", "SETTINGS", "STORE", "SUPERVISOR", "now_ms"]
