"""The counter service's app factory: wires settings, Redis, the group-commit writer,
the stats cache, the ingest pipeline, metrics and routes. No module globals."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from portal_pulse.core.batch_metrics import BatchMetrics
from portal_pulse.core.clock import Clock, SystemClock
from portal_pulse.core.edge import install_edge
from portal_pulse.core.health import add_ops_routes
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.redis_conn import STORAGE_ERRORS, connect
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import Settings
from portal_pulse.core.supervise import Supervisor
from portal_pulse.counter import admin_handlers, badge, handlers
from portal_pulse.counter.bots import BotDetector
from portal_pulse.counter.metrics import CounterMetrics, online_refresher
from portal_pulse.counter.openapi import openapi_document
from portal_pulse.counter.pipeline import HitPipeline
from portal_pulse.counter.read_budget import ReadBudget
from portal_pulse.counter.shared_reads import SharedReads
from portal_pulse.counter.state import (
    CLOCK,
    FOLDER,
    METRICS,
    PIPELINE,
    READS,
    REDIS,
    SERIES_BUDGET,
    SERVICE_METRICS,
    SETTINGS,
    STATS,
    STORE,
    SUPERVISOR,
    WRITER,
)
from portal_pulse.counter.stats import StatsCache
from portal_pulse.counter.stats_fold import StatisticsFolder
from portal_pulse.counter.stats_handlers import add_statistics_routes
from portal_pulse.counter.stats_page import get_stats_css, get_stats_page
from portal_pulse.counter.store import HitStore
from portal_pulse.counter.visitor import hashing_secret
from portal_pulse.counter.writer import hit_writer

#: Hits may come from any page of a configured origin; admin calls come from scripts.
CORS_METHODS = "GET, POST, OPTIONS"


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = await connect(app[SETTINGS].redis)
    app[REDIS] = client
    runner = ScriptRunner.for_settings(client, app[SETTINGS].redis)
    counter = app[SETTINGS].counter
    app[STORE] = store = HitStore(runner, counter)
    app[FOLDER] = folder = StatisticsFolder(client, runner, store, (site.name for site in app[SETTINGS].sites),
                                            counter.top_entries, counter.statistics_fold_seconds)
    with contextlib.suppress(*STORAGE_ERRORS):  # Redis may come later: the runner reloads them
        await store.load_script()
        await folder.load_script()
    yield
    await client.aclose()


async def writer_ctx(app: web.Application) -> AsyncIterator[None]:
    counter = app[SETTINGS].counter
    writer = hit_writer(app[REDIS], app[STORE], app[METRICS], BatchMetrics(app[SERVICE_METRICS]), counter)
    app[WRITER] = writer
    app[PIPELINE] = HitPipeline(
        app[SETTINGS], app[CLOCK], BotDetector(), hashing_secret(app[SETTINGS].secret), writer,
        app[METRICS],
    )
    fold = app[SUPERVISOR].start("counter-statistics-fold", app[FOLDER].run)
    yield
    await writer.close()  # commits everything already queued: nothing acknowledged is lost
    fold.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await fold
    with contextlib.suppress(*STORAGE_ERRORS):  # the log keeps what is left for the next fold
        await app[FOLDER].fold_all(sorted(app[STORE].take_logged_sites()))


async def stats_ctx(app: web.Application) -> AsyncIterator[None]:
    counter = app[SETTINGS].counter
    cache = StatsCache(app[REDIS], app[CLOCK], counter.stats_cache_seconds, counter.online_window_seconds)
    app[STATS] = cache
    reads: SharedReads[bytes] = SharedReads(app[CLOCK], counter.stats_cache_seconds)  # series and pages, like the stats
    app[READS] = reads
    yield
    await reads.close()
    await cache.close()


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    settings.validate()  # an invalid Settings never reaches an app, however it was built
    service = ServiceMetrics("counter")
    origins = tuple(sorted({origin for site in settings.sites for origin in site.origins}))
    app = web.Application(
        client_max_size=max(settings.counter.max_body_bytes, admin_handlers.MAX_BASELINE_BYTES) + 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[SERVICE_METRICS] = service
    app[METRICS] = CounterMetrics(service, settings)
    # a fold that has not succeeded for this long (Redis down, or a bug) fails /readyz
    app[SUPERVISOR] = Supervisor(service, app[CLOCK], max(30.0, 20 * settings.counter.statistics_fold_seconds))
    rate = settings.counter.max_series_per_second
    app[SERIES_BUDGET] = ReadBudget(rate, max(1, int(rate)))
    app.cleanup_ctx.extend([redis_ctx, writer_ctx, stats_ctx])
    service.add_refresher(
        online_refresher(app[METRICS], lambda: app[REDIS], app[CLOCK], settings.counter.online_window_seconds)
    )
    app.router.add_post("/v1/hit", handlers.post_hit)
    app.router.add_get("/v1/hit.gif", handlers.get_pixel)
    app.router.add_get("/v1/stats", handlers.get_stats)
    app.router.add_get("/v1/stats/series", handlers.get_series)
    app.router.add_get("/v1/badge.svg", badge.get_badge)
    app.router.add_get("/v1/pages", handlers.get_page)
    app.router.add_put("/v1/admin/sites/{site}/baseline", admin_handlers.put_baseline)
    app.router.add_get("/widget.js", handlers.asset_handler("widget.js", "text/javascript"))
    app.router.add_get("/widget.css", handlers.asset_handler("widget.css", "text/css"))
    add_statistics_routes(app)  # /v1/stats/top, top.csv, profile, export.csv
    app.router.add_get("/stats", get_stats_page)
    app.router.add_get("/stats.css", get_stats_css)
    add_ops_routes(app, service, openapi_document(settings),
                   refusing=lambda pinged: WRITER in app and app[WRITER].refusing(pinged),
                   stale_tasks=app[SUPERVISOR].stale)
    install_edge(app, service, lambda: origins, CORS_METHODS)  # every route is added
    return app
