"""``core.health``: the operations routes on a bare app, against a real Valkey and an
address nothing listens on: /healthz, every /readyz answer (Redis down, the breaker open,
a stale task, ready), ``pulse_redis_up`` refreshed at a scrape, /openapi.json, and the
summary access log only in ``summary`` mode."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from portal_pulse.core.app_keys import REDIS, SETTINGS
from portal_pulse.core.embedded import EmbeddedServer, free_port
from portal_pulse.core.health import add_ops_routes
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.settings import Settings
from tests.conftest import ClientFactory, make_settings
from tests.metric_samples import sample

OPENAPI = {"openapi": "3.1.0", "info": {"title": "ops", "version": "1"}}
NOT_LISTENING = f"redis://127.0.0.1:{free_port()}/0"

App = Callable[..., Any]


@pytest.fixture
async def ops(make_client: ClientFactory) -> AsyncIterator[App]:
    """Build an app with only the operations routes; ``ops(url, **options)``."""
    clients: list[Redis] = []

    async def build(url: str, settings: Settings | None = None, socket_timeout: float = 0.5,
                    **options: Any) -> tuple[TestClient[web.Request, web.Application], ServiceMetrics]:
        app = web.Application()
        app[SETTINGS] = settings or make_settings(url)
        app[REDIS] = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=socket_timeout)
        clients.append(app[REDIS])
        metrics = ServiceMetrics("ops")
        add_ops_routes(app, metrics, OPENAPI, **options)
        return await make_client(app), metrics

    yield build
    for client in clients:
        await client.aclose()


async def error_of(response: Any) -> tuple[int, str | None, str | None, dict[str, Any]]:
    return response.status, response.headers.get("Retry-After"), response.headers.get("Cache-Control"), \
        await response.json()


async def test_healthz_answers_without_redis(ops: App) -> None:
    client, _ = await ops(NOT_LISTENING)
    response = await client.get("/healthz")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_redis_up_and_sets_the_gauge(ops: App, valkey_url: str) -> None:
    client, metrics = await ops(valkey_url)
    response = await client.get("/readyz")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.json() == {"status": "ready", "redis": "up"}
    assert sample((await metrics.render()).decode(), "pulse_redis_up", service="ops") == 1


async def test_readyz_without_redis_is_503_and_the_scrape_refreshes_the_gauge(ops: App) -> None:
    client, metrics = await ops(NOT_LISTENING)
    metrics.redis_up.labels("ops").set(1)  # a stale value: the scrape itself must refresh it
    scraped = await client.get("/metrics")
    assert scraped.status == 200
    assert sample(await scraped.text(), "pulse_redis_up", service="ops") == 0
    metrics.redis_up.labels("ops").set(1)
    assert await error_of(await client.get("/readyz")) == (
        503, "1", "no-store", {"error": {"code": "unavailable", "message": "redis is not reachable"}})
    assert sample((await metrics.render()).decode(), "pulse_redis_up", service="ops") == 0


async def test_readyz_while_the_breaker_refuses(ops: App, valkey_url: str) -> None:
    asked: list[bool] = []

    def refusing(pinged: bool) -> bool:
        asked.append(pinged)
        return True

    client, _ = await ops(valkey_url, refusing=refusing)
    assert await error_of(await client.get("/readyz")) == (
        503, "1", "no-store",
        {"error": {"code": "unavailable", "message": "storage failed a moment ago; retry shortly"}})
    assert asked == [True]


async def test_readyz_names_the_stale_tasks(ops: App, valkey_url: str) -> None:
    client, _ = await ops(valkey_url, stale_tasks=lambda: ["scheduler", "writer"])
    assert await error_of(await client.get("/readyz")) == (
        503, "1", "no-store",
        {"error": {"code": "unavailable", "message": "background task not making progress: scheduler, writer"},
         "stale_tasks": ["scheduler", "writer"]})


async def test_a_hanging_redis_is_not_ready_within_the_timeout(ops: App, own_valkey: EmbeddedServer) -> None:
    client, _ = await ops(own_valkey.url, socket_timeout=30, timeout_seconds=0.1)
    assert (await client.get("/readyz")).status == 200
    own_valkey.pause()
    try:
        async with asyncio.timeout(5):  # the readiness timeout answers, not the client's 30 s
            response = await client.get("/readyz")
    finally:
        own_valkey.resume()
    assert response.status == 503


async def test_the_openapi_document(ops: App) -> None:
    client, _ = await ops(NOT_LISTENING)
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert await response.json() == OPENAPI


@pytest.mark.parametrize("mode", ["summary", "requests", "off"])
async def test_the_summary_log_runs_only_in_summary_mode(ops: App, mode: str) -> None:
    settings = dataclasses.replace(make_settings(NOT_LISTENING), access_log=mode)
    client, _ = await ops(NOT_LISTENING, settings=settings)
    assert len(client.app.cleanup_ctx) == (1 if mode == "summary" else 0)
