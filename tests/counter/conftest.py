"""Counter fixtures: the real app through its factory, a manual clock, helpers to send hits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.settings import Settings
from portal_pulse.counter.app import create_app
from portal_pulse.counter.state import REDIS
from tests.conftest import ClientFactory, make_settings

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@dataclass
class Counter:
    """A running counter app and its HTTP client."""

    client: TestClient[web.Request, web.Application]
    app: web.Application
    clock: ManualClock
    settings: Settings

    async def hit(self, *, ua: str = BROWSER_UA, headers: dict[str, str] | None = None, query: str = "",
                  **fields: Any) -> ClientResponse:
        body = {"site": "default", "kind": "pageview", "path": "/", "visitor": "v1", **fields}
        response = await self.client.post(f"/v1/hit{query}", json=body, headers={"User-Agent": ua, **(headers or {})})
        await response.read()
        return response

    def app_redis(self) -> Redis:
        return self.app[REDIS]

    async def stats(self, site: str = "default") -> dict[str, Any]:
        response = await self.client.get("/v1/stats", params={"site": site})
        assert response.status == 200, await response.text()
        data: dict[str, Any] = await response.json()
        return data


CounterFactory = Callable[..., Awaitable[Counter]]


def counter_settings(url: str, **counter: Any) -> Settings:
    """Test settings: no stats cache (each read sees the last write) unless a test asks."""
    return make_settings(url, counter={"stats_cache_seconds": 0, **counter})


@pytest.fixture
def start_counter(make_client: ClientFactory, clock: ManualClock) -> Callable[..., Awaitable[Counter]]:
    async def start(url: str, settings: Settings | None = None, **counter: Any) -> Counter:
        settings = settings or counter_settings(url, **counter)
        app = create_app(settings, clock)
        client = await make_client(app)
        return Counter(client, app, clock, settings)

    return start


@pytest.fixture
async def counter(redis_url: str, start_counter: CounterFactory) -> Counter:
    """The counter against each server kind (Valkey and Redis): for storage semantics."""
    return await start_counter(redis_url)


@pytest.fixture
async def vcounter(valkey_url: str, start_counter: CounterFactory) -> Counter:
    """The counter against Valkey only: for HTTP behaviour that does not depend on the server."""
    return await start_counter(valkey_url)
