"""The session keep-alive service: ``create_app(settings)`` wires everything.

Resources are ``cleanup_ctx`` generators, opened in order and closed in reverse:
the Redis client and store, the pub/sub listener, the due-time scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files

from aiohttp import web

from portal_pulse.core.app_keys import SERVICE_METRICS
from portal_pulse.core.batch_metrics import BatchMetrics
from portal_pulse.core.clock import Clock, SystemClock
from portal_pulse.core.edge import install_edge
from portal_pulse.core.health import add_ops_routes
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.redis_conn import STORAGE_ERRORS, redis_client
from portal_pulse.core.scripts import ScriptRunner
from portal_pulse.core.settings import Settings
from portal_pulse.core.supervise import Beat, Supervisor, beating_while
from portal_pulse.session import handlers
from portal_pulse.session.app_state import BUS, CLOCK, METRICS, REDIS, SCHEDULER, SETTINGS, STORE, SUPERVISOR
from portal_pulse.session.event_bus import RESYNC, SHUTDOWN, EventBus
from portal_pulse.session.keys import SESSION_EVENTS_CHANNEL
from portal_pulse.session.metrics import SessionMetrics
from portal_pulse.session.openapi import openapi_document
from portal_pulse.session.scheduler import Scheduler
from portal_pulse.session.sse import METHODS, session_events
from portal_pulse.session.store import SessionStore

BUS_READY_TIMEOUT_SECONDS = 2.0
#: How often a subscribed event bus counts as a success for its staleness check.
BUS_BEAT_SECONDS = 1.0


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with redis_client(settings.redis) as client:
        app[REDIS] = client
        timeout = max(0.5, settings.redis.command_timeout_seconds * 2)
        store = SessionStore(client, ScriptRunner.for_settings(client, settings.redis), settings.session, timeout,
                             BatchMetrics(app[METRICS].base))
        app[STORE] = store
        with contextlib.suppress(*STORAGE_ERRORS):  # Redis may come later: NOSCRIPT loads them
            await store.load_scripts()
        yield
        await app[STORE].close()


async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    bus = EventBus(app[REDIS], SESSION_EVENTS_CHANNEL)
    app[BUS] = bus

    async def run_bus(beat: Beat) -> None:
        # (Re)started: not subscribed yet, and streams re-read their snapshot, since
        # events may have been missed while the listener was down.
        bus.subscribed.clear()
        bus.broadcast(RESYNC)
        async with beating_while(bus.subscribed.is_set, beat, BUS_BEAT_SECONDS):
            await bus.run()

    task = app[SUPERVISOR].start("session-event-bus", run_bus)
    with contextlib.suppress(TimeoutError):  # Redis down: streams resync once it is back
        await asyncio.wait_for(bus.subscribed.wait(), BUS_READY_TIMEOUT_SECONDS)
    yield
    bus.stop()
    await _finish(task)


async def _finish(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].session
    scheduler = Scheduler(app[STORE], app[CLOCK], app[METRICS], settings.scheduler_max_sleep_seconds)
    app[SCHEDULER] = scheduler
    task = app[SUPERVISOR].start("session-scheduler", scheduler.run_forever)
    yield
    scheduler.stop()
    await _finish(task)


async def _close_streams(app: web.Application) -> None:
    """On shutdown, end every open event stream so the server need not wait for them."""
    if BUS in app:
        app[BUS].broadcast(SHUTDOWN)


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    settings.validate()  # an invalid Settings never reaches an app, however it was built
    base = ServiceMetrics("session")
    metrics = SessionMetrics(base)
    app = web.Application(client_max_size=settings.session.max_body_bytes)
    app[SETTINGS] = settings
    app[SERVICE_METRICS] = base
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = metrics
    supervisor = app[SUPERVISOR] = Supervisor(base, app[CLOCK], settings.session.background_stale_seconds)

    async def refresh_live() -> None:
        metrics.live.set(await app[STORE].live_count())

    base.add_refresher(refresh_live)
    app.cleanup_ctx.extend([_redis_ctx, _bus_ctx, _scheduler_ctx])
    app.on_shutdown.append(_close_streams)

    static = files("portal_pulse.session") / "static"
    client_js = (static / "session.js").read_bytes()
    client_css = (static / "session.css").read_bytes()
    asset_headers = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}

    async def session_js(request: web.Request) -> web.Response:
        return web.Response(
            body=client_js, content_type="application/javascript", charset="utf-8", headers=asset_headers
        )

    async def session_css(request: web.Request) -> web.Response:
        return web.Response(body=client_css, content_type="text/css", charset="utf-8", headers=asset_headers)

    router = app.router
    router.add_post("/v1/sessions", handlers.create_session)
    router.add_get("/v1/sessions/{id}", handlers.get_session, allow_head=False)
    router.add_delete("/v1/sessions/{id}", handlers.end_session)
    router.add_post("/v1/sessions/{id}/activity", handlers.report_activity)
    router.add_post("/v1/sessions/{id}/keepalive", handlers.keep_alive)
    router.add_get("/v1/sessions/{id}/events", session_events, allow_head=False)
    router.add_get("/session.js", session_js)
    router.add_get("/session.css", session_css)
    add_ops_routes(app, base, openapi_document(), stale_tasks=supervisor.stale,
                   refusing=lambda pinged: STORE in app and app[STORE].refusing(pinged))
    install_edge(app, base, lambda: settings.session.origins, METHODS)  # every route is added
    return app
