"""The counter service's app factory: wires settings, Redis, the group-commit writer,
the stats cache, the ingest pipeline, metrics and routes. No module globals."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from services.core.clock import Clock, SystemClock
from services.core.edge import edge_middleware
from services.core.health import add_ops_routes
from services.core.metrics import ServiceMetrics
from services.core.redis_conn import STORAGE_ERRORS, connect
from services.core.settings import Settings
from services.counter import admin_handlers, handlers
from services.counter.bots import BotDetector
from services.counter.group_commit import GroupCommitWriter
from services.counter.metrics import CounterMetrics, online_refresher
from services.counter.openapi import openapi_document
from services.counter.pipeline import HitPipeline
from services.counter.state import (
    CLOCK,
    METRICS,
    PIPELINE,
    REDIS,
    SETTINGS,
    STATS,
    STORE,
    WRITER,
)
from services.counter.stats import StatsCache
from services.counter.store import HitStore
from services.counter.visitor import SecretSource

#: Hits may come from any page of a configured origin; admin calls come from scripts.
CORS_METHODS = "GET, POST, OPTIONS"


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = await connect(app[SETTINGS].redis)
    app[REDIS] = client
    app[STORE] = HitStore(client, app[SETTINGS].counter)
    with contextlib.suppress(*STORAGE_ERRORS):  # Redis may come later: the writer reloads it
        await app[STORE].load_script()
    yield
    await client.aclose()


async def writer_ctx(app: web.Application) -> AsyncIterator[None]:
    counter = app[SETTINGS].counter
    writer = GroupCommitWriter(
        app[STORE], app[METRICS], counter.batch_max_hits, counter.commit_timeout_seconds, counter.max_pending_hits,
        counter.commits_in_flight,
    )
    writer.start()
    app[WRITER] = writer
    app[PIPELINE] = HitPipeline(
        app[SETTINGS], app[CLOCK], BotDetector(), SecretSource(app[SETTINGS].secret, app[REDIS]), writer
    )
    yield
    await writer.close()  # commits everything already queued: nothing acknowledged is lost


async def stats_ctx(app: web.Application) -> AsyncIterator[None]:
    counter = app[SETTINGS].counter
    cache = StatsCache(app[REDIS], app[CLOCK], counter.stats_cache_seconds, counter.online_window_seconds)
    app[STATS] = cache
    yield
    await cache.close()


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    settings.validate()  # an invalid Settings never reaches an app, however it was built
    service = ServiceMetrics("counter")
    origins = tuple(sorted({origin for site in settings.sites for origin in site.origins}))
    app = web.Application(
        middlewares=[edge_middleware(service, lambda: origins, CORS_METHODS)],
        client_max_size=max(settings.counter.max_body_bytes, admin_handlers.MAX_BASELINE_BYTES) + 1024,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = CounterMetrics(service, settings)
    app.cleanup_ctx.extend([redis_ctx, writer_ctx, stats_ctx])
    service.add_refresher(
        online_refresher(app[METRICS], lambda: app[REDIS], app[CLOCK], settings.counter.online_window_seconds)
    )
    app.router.add_post("/v1/hit", handlers.post_hit)
    app.router.add_get("/v1/hit.gif", handlers.get_pixel)
    app.router.add_get("/v1/stats", handlers.get_stats)
    app.router.add_get("/v1/stats/series", handlers.get_series)
    app.router.add_get("/v1/pages", handlers.get_page)
    app.router.add_put("/v1/admin/sites/{site}/baseline", admin_handlers.put_baseline)
    app.router.add_get("/widget.js", handlers.widget_handler())
    add_ops_routes(app, service, openapi_document(settings))
    return app
