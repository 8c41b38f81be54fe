"""Typed keys of everything the counter app holds (no module globals); the shared ones
(settings, clock, Redis) come from ``core.app_keys``."""

from __future__ import annotations

from aiohttp import web

from services.core.app_keys import CLOCK, REDIS, SETTINGS
from services.core.metrics import ServiceMetrics
from services.counter.metrics import CounterMetrics
from services.counter.pipeline import HitPipeline
from services.counter.stats import StatsCache
from services.counter.store import HitStore
from services.counter.writer import HitWriter

SERVICE_METRICS = web.AppKey("service_metrics", ServiceMetrics)
METRICS = web.AppKey("counter_metrics", CounterMetrics)
STORE = web.AppKey("hit_store", HitStore)
WRITER: web.AppKey[HitWriter] = web.AppKey("hit_writer")
PIPELINE = web.AppKey("hit_pipeline", HitPipeline)
STATS = web.AppKey("stats_cache", StatsCache)

__all__ = ["CLOCK", "METRICS", "PIPELINE", "REDIS", "SERVICE_METRICS", "SETTINGS", "STATS", "STORE", "WRITER"]
