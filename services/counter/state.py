"""Typed keys of everything the counter app holds (no module globals)."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from services.core.clock import Clock
from services.core.metrics import ServiceMetrics
from services.core.settings import Settings
from services.counter.group_commit import GroupCommitWriter
from services.counter.metrics import CounterMetrics
from services.counter.pipeline import HitPipeline
from services.counter.stats import StatsCache
from services.counter.store import HitStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
SERVICE_METRICS = web.AppKey("service_metrics", ServiceMetrics)
METRICS = web.AppKey("counter_metrics", CounterMetrics)
REDIS = web.AppKey("redis", Redis)
STORE = web.AppKey("hit_store", HitStore)
WRITER = web.AppKey("group_commit_writer", GroupCommitWriter)
PIPELINE = web.AppKey("hit_pipeline", HitPipeline)
STATS = web.AppKey("stats_cache", StatsCache)
