"""Typed keys of everything the counter app holds (no module globals); the shared ones
(settings, clock, Redis) come from ``core.app_keys``."""

from __future__ import annotations

from aiohttp import web

from services.core.app_keys import CLOCK, REDIS, SETTINGS
from services.counter.group_commit import GroupCommitWriter
from services.counter.metrics import CounterMetrics
from services.counter.pipeline import HitPipeline
from services.counter.stats import StatsCache
from services.counter.store import HitStore

METRICS = web.AppKey("counter_metrics", CounterMetrics)
STORE = web.AppKey("hit_store", HitStore)
WRITER = web.AppKey("group_commit_writer", GroupCommitWriter)
PIPELINE = web.AppKey("hit_pipeline", HitPipeline)
STATS = web.AppKey("stats_cache", StatsCache)

__all__ = ["CLOCK", "METRICS", "PIPELINE", "REDIS", "SETTINGS", "STATS", "STORE", "WRITER"]
