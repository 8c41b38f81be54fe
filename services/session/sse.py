"""``GET /v1/sessions/{id}/events``: server-sent events for the page.

On connect the current snapshot (``event: state``), then each transition of that session
as any process announces it (``event: prompt`` ...), and a keep-alive comment every 15 s.
Reading the stream never extends the session. It closes after ``expired`` or ``ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from portal_pulse.core.errors import ApiError
from portal_pulse.core.redis_conn import STORAGE_ERRORS
from portal_pulse.core.web import cors_headers
from portal_pulse.session.app_state import BUS, METRICS, SETTINGS, STORE, now_ms
from portal_pulse.session.event_bus import RESYNC, SHUTDOWN, Event
from portal_pulse.session.handlers import session_ref, unknown_session
from portal_pulse.session.payloads import session_object
from portal_pulse.session.state_machine import State

PING_SECONDS = 15.0
SEND_TIMEOUT_SECONDS = 10.0
METHODS = "GET, POST, DELETE, OPTIONS"


@dataclass(frozen=True)
class Snapshot:
    """The session as a tab is sent it, and the session's version when it was read: an
    event of that version or older is already reflected in it. Events are ordered by the
    session's version (counted in Redis), never by comparing two processes' clocks."""

    body: dict[str, Any]
    version: int


async def _snapshot(request: web.Request, session_id: str, digest: str) -> Snapshot | None:
    stored = await request.app[STORE].read(digest)
    if stored is None:
        return None
    now = now_ms(request.app)
    ev = stored.at(now)
    body = session_object(
        session_id, ev.state, ev.remaining_ms, ev.prompt_in_ms, stored.timing.idle_ms, stored.timing.prompt_ms, now,
        stored.version,
    )
    return Snapshot(body, stored.version)


def _transition(session_id: str, event: Event) -> dict[str, Any]:
    """The page's view of a published transition: the session object plus its type
    (the subject stays with the back ends)."""
    at_ms = int(event.get("at", 0))
    return {
        "id": session_id,
        "type": str(event.get("type")),
        "state": str(event.get("state")),
        "remaining": float(event.get("remaining", 0)),
        "prompt_in": float(event.get("prompt_in", 0)),
        "idle_timeout": int(event.get("idle_timeout", 0)),
        "prompt_seconds": int(event.get("prompt_seconds", 0)),
        "server_time": at_ms / 1000,
        "version": int(event.get("version", 0)),
    }


#: Backoff between attempts to re-read a stream's snapshot after the bus resubscribed.
SNAPSHOT_RETRY_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)
_CLOSED = Snapshot({}, -1)


async def _snapshot_retried(
    request: web.Request, session_id: str, digest: str, closed: asyncio.Future[None]
) -> Snapshot | None:
    """The snapshot after a resync, retried with backoff while storage fails and the
    tab is connected (never skipped: events may have been missed); ``_CLOSED`` once the
    tab has gone."""
    for attempt in itertools.count():
        try:
            return await _snapshot(request, session_id, digest)
        except STORAGE_ERRORS:
            delay = SNAPSHOT_RETRY_SECONDS[min(attempt, len(SNAPSHOT_RETRY_SECONDS) - 1)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(closed), delay)
            if closed.done():
                return _CLOSED
    raise AssertionError("unreachable")


async def _next(queue: asyncio.Queue[Event], closed: asyncio.Future[None]) -> Event | None:
    """The next event, or None once the client has gone (``closed``: the response's
    ping task ended). ``closed`` is never cancelled here: that would stop the pings."""
    getter = asyncio.ensure_future(queue.get())
    try:
        waiters: set[asyncio.Future[Any]] = {getter, closed}
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getter.done():
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getter
    return getter.result() if getter in done else None


async def session_events(request: web.Request) -> web.StreamResponse:
    session_id, digest = session_ref(request)
    app = request.app
    bus, metrics = app[BUS], app[METRICS]
    if bus.streams_of(digest) >= app[SETTINGS].session.max_streams_per_session:
        raise ApiError(429, "too_many_streams", "too many open event streams for this session",
                       {"Retry-After": "5"})
    queue = bus.subscribe(digest)  # before the snapshot, so nothing falls in between
    try:
        snapshot = await _snapshot(request, session_id, digest)
        if snapshot is None:
            raise unknown_session()
        headers = cors_headers(request.headers.get("Origin"), app[SETTINGS].session.origins, METHODS)
        metrics.event_streams.inc()
        try:
            async with sse_response(
                request, headers=headers, ping_interval=PING_SECONDS, send_timeout=SEND_TIMEOUT_SECONDS
            ) as response:
                await _stream(request, response, queue, session_id, digest, snapshot)
            return response
        finally:
            metrics.event_streams.dec()
    finally:
        bus.unsubscribe(digest, queue)


async def _stream(
    request: web.Request,
    response: EventSourceResponse,
    queue: asyncio.Queue[Event],
    session_id: str,
    digest: str,
    snapshot: Snapshot,
) -> None:
    closed = asyncio.ensure_future(response.wait())
    try:
        await _relay(request, response, queue, closed, session_id, digest, snapshot)
    finally:
        response.stop_streaming()
        with contextlib.suppress(asyncio.CancelledError):
            await closed


async def _relay(
    request: web.Request,
    response: EventSourceResponse,
    queue: asyncio.Queue[Event],
    closed: asyncio.Future[None],
    session_id: str,
    digest: str,
    snapshot: Snapshot,
) -> None:
    with contextlib.suppress(ConnectionResetError, TimeoutError, RuntimeError):
        await response.send(json.dumps(snapshot.body), event="state")
        seen = snapshot.version
        if State(snapshot.body["state"]).is_terminal:
            return
        while True:
            event = await _next(queue, closed)
            if event is None or event is SHUTDOWN:
                return
            if event is RESYNC:
                fresh = await _snapshot_retried(request, session_id, digest, closed)
                if fresh is _CLOSED:
                    return
                if fresh is None:
                    return
                await response.send(json.dumps(fresh.body), event="state")
                if State(fresh.body["state"]).is_terminal:
                    return
                seen = fresh.version
                continue
            if event.get("type") == "created" or int(event.get("version", 0)) <= seen:
                continue  # already reflected in the snapshot this tab was sent
            data = _transition(session_id, event)
            await response.send(json.dumps(data), event=data["type"])
            if data["state"] in (State.EXPIRED, State.ENDED):
                return
