"""Redis stopped: every call answers 503 + Retry-After quickly, and the app still shuts down."""

from __future__ import annotations

import asyncio
from pathlib import Path

from portal_pulse.core.embedded import EmbeddedServer
from tests.session.session_support import ClientFactory, create, session_settings, start


async def test_redis_down_is_a_quick_503(tmp_path: Path, make_client: ClientFactory) -> None:
    server = EmbeddedServer(tmp_path / "redis", appendonly=False).start()  # our own: we stop it
    try:
        client = await start(make_client, session_settings(server.url))
        sid = (await create(client))["id"]
        server.stop()
        loop = asyncio.get_running_loop()
        for method, path in [
            ("GET", f"/v1/sessions/{sid}"), ("POST", f"/v1/sessions/{sid}/keepalive"),
            ("POST", f"/v1/sessions/{sid}/activity"), ("DELETE", f"/v1/sessions/{sid}"),
            ("GET", f"/v1/sessions/{sid}/events"), ("GET", "/readyz"),
        ]:
            started = loop.time()
            response = await client.request(method, path)
            assert response.status == 503, (method, path)
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["error"]["code"] == "unavailable"
            assert loop.time() - started < 3.0
        response = await client.post(
            "/v1/sessions", json={}, headers={"Authorization": "Bearer test-service-token-0123456789"}
        )
        assert response.status == 503
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/metrics")).status == 200
    finally:
        server.stop()
