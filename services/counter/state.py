"""Typed keys of everything the counter app holds (no module globals); the shared ones
(settings, clock, Redis) come from ``core.app_keys``."""

from __future__ import annotations

from aiohttp import web

from portal_pulse.core.app_keys import CLOCK, REDIS, SERVICE_METRICS, SETTINGS
from portal_pulse.core.supervise import Supervisor
from portal_pulse.counter.metrics import CounterMetrics
from portal_pulse.counter.pipeline import HitPipeline
from portal_pulse.counter.read_budget import ReadBudget
from portal_pulse.counter.shared_reads import SharedReads
from portal_pulse.counter.stats import StatsCache
from portal_pulse.counter.stats_fold import StatisticsFolder
from portal_pulse.counter.store import HitStore
from portal_pulse.counter.writer import HitWriter

METRICS = web.AppKey("counter_metrics", CounterMetrics)
STORE = web.AppKey("hit_store", HitStore)
WRITER: web.AppKey[HitWriter] = web.AppKey("hit_writer")
PIPELINE = web.AppKey("hit_pipeline", HitPipeline)
STATS = web.AppKey("stats_cache", StatsCache)
READS: web.AppKey[SharedReads[bytes]] = web.AppKey("shared_reads")
SERIES_BUDGET = web.AppKey("series_budget", ReadBudget)
FOLDER = web.AppKey("statistics_folder", StatisticsFolder)
SUPERVISOR = web.AppKey("supervisor", Supervisor)

__all__ = [
    "CLOCK", "FOLDER", "METRICS", "PIPELINE", "READS", "REDIS", "SERIES_BUDGET", "SERVICE_METRICS", "SETTINGS",
    "STATS", "STORE", "SUPERVISOR", "WRITER",
]
