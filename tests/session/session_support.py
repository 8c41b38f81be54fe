"""Helpers shared by the session tests (fixtures come from ``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from portal_pulse.core.clock import Clock
from portal_pulse.core.keys import SESSION_EVENTS_STREAMS
from portal_pulse.core.settings import Settings
from portal_pulse.session.app import create_app
from portal_pulse.session.keys import DUE_INDEXES
from tests.conftest import SERVICE_TOKEN, T0, ClientFactory, make_settings

__all__ = [
    "AUTH",
    "SERVICE_TOKEN",
    "T0",
    "Client",
    "ClientFactory",
    "create",
    "due_count",
    "make_settings",
    "next_event",
    "session_settings",
    "start",
    "stream_events",
]

AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
Client = TestClient[web.Request, web.Application]


def session_settings(redis_url: str, **session: Any) -> Settings:
    """Test settings: 60 s idle, 10 s prompt, 2 s grace unless overridden. Manual clocks
    jump by minutes in one step, faster than a background task can report progress, so
    readiness ignores staleness below an hour here; test_session_supervised sets its own."""
    values: dict[str, Any] = {"idle_timeout_seconds": 60, "prompt_seconds": 10, "grace_seconds": 2.0,
                              "origins": ("http://portal.test",), "background_stale_seconds": 3600.0}
    values.update(session)
    return make_settings(redis_url, session=values)


async def start(make_client: ClientFactory, settings: Settings, clock: Clock | None = None) -> Client:
    return await make_client(create_app(settings, clock))


async def create(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/sessions", json=body, headers=AUTH)
    assert response.status == 201, await response.text()
    data: dict[str, Any] = await response.json()
    return data


def _entry_order(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


async def stream_events(redis: Redis) -> list[dict[str, str]]:
    """Every entry of the session event streams (one per bucket), decoded, in the order
    they were written (by entry id: one server's clock)."""
    entries: list[Any] = []
    for stream in SESSION_EVENTS_STREAMS:
        entries.extend(await redis.xrange(stream) or [])
    entries.sort(key=lambda entry: _entry_order(entry[0]))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def due_count(redis: Redis) -> int:
    """Sessions in the due indexes of every bucket."""
    return sum([await redis.zcard(due) for due in DUE_INDEXES])


async def next_event(response: ClientResponse, seconds: float = 5.0) -> tuple[str, dict[str, Any]]:
    """The next server-sent event (comments skipped); EOFError when the stream closed."""
    event, data = "message", list[str]()
    async with asyncio.timeout(seconds):
        while True:
            raw = await response.content.readline()
            if raw == b"":
                raise EOFError("the event stream closed")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    parsed: dict[str, Any] = json.loads("\n".join(data))
                    return event, parsed
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
