"""Requests that give every metric family of the two services a sample."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import SERVICE_TOKEN

#: A real browser's User-Agent: aiohttp's own is (rightly) taken for a bot.
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Safari/537.36"}


async def send_hits(http: aiohttp.ClientSession, counter: str, count: int) -> None:
    """``count`` pageviews from distinct visitors: ``count`` visits, all counted."""
    for i in range(count):
        body = {"site": "default", "kind": "pageview", "path": "/a", "visitor": f"v{i}"}
        async with http.post(f"{counter}/v1/hit", json=body, headers=BROWSER) as response:
            assert response.status == 204, await response.text()
            assert not response.headers.get("X-Pulse-Counted", "").startswith("0"), response.headers


async def exercise_counter(http: aiohttp.ClientSession, counter: str) -> None:
    await send_hits(http, counter, 2)
    async with http.get(f"{counter}/v1/stats", params={"site": "default"}) as response:
        assert response.status == 200
    async with http.get(f"{counter}/readyz") as response:
        assert response.status == 200


async def exercise_session(http: aiohttp.ClientSession, session: str) -> None:
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with http.post(f"{session}/v1/sessions", json={"subject": "ops"}, headers=headers) as response:
        assert response.status == 201, await response.text()
        created: dict[str, Any] = await response.json()
    sid = created["id"]
    async with http.get(f"{session}/v1/sessions/{sid}") as response:
        assert response.status == 200
    async with http.post(f"{session}/v1/sessions/{sid}/keepalive") as response:
        assert response.status == 200, await response.text()
    async with http.get(f"{session}/readyz") as response:
        assert response.status == 200
