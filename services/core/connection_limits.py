"""HTTP connection limits aiohttp does not have: a deadline for a request's headers, and
a cap on open connections per process.

aiohttp closes a connection that stays idle past its keep-alive timeout, but a client
that sends a request's headers a byte at a time (a slowloris), or nothing at all, is
never refused: each holds a file descriptor for as long as it likes. Here every
connection must complete a request's headers within ``header_timeout_seconds`` of
opening (and, on a kept-alive connection, of its next request's first byte); past it the
server answers 408 (if anything arrived) and closes. Beyond ``max_connections`` open
connections a new one is answered 503 at once and closed, before it costs a parser or a
task, so the process keeps descriptors for its Redis connections and for /healthz.
Both are counted in ``pulse_http_connections_closed_total{reason}``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from http import HTTPStatus
from typing import Any, cast

import msgspec
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.settings import HttpSettings

log = logging.getLogger(__name__)

#: File descriptors kept back from the connection cap: Redis pools, logs, the listener.
RESERVED_DESCRIPTORS = 256


def _answer(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    body = msgspec.json.encode({"error": {"code": code, "message": message}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


TIMED_OUT = _answer(408, "Request Timeout", "timeout", "the request's headers did not arrive in time")
OVER_CAPACITY = _answer(503, "Service Unavailable", "over_capacity", "too many open connections; retry later",
                        "Retry-After: 1\r\n")


def connection_cap(configured: int, soft_limit: int | None = None) -> int:
    """``configured``, lowered to fit the process's file limit (minus a reserve)."""
    if soft_limit is None:
        soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft_limit - RESERVED_DESCRIPTORS))


class LimitedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with a header deadline and an open-connection cap."""

    __slots__ = ("_bytes_since_request", "_header_deadline", "_header_timer", "_limited_server")

    def __init__(self, manager: LimitedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limited_server = manager
        #: When the awaited request's headers are overdue (loop time), None when none is awaited.
        self._header_deadline: float | None = None
        #: One timer per connection, moved on lazily (as aiohttp's keep-alive timer is): a
        #: request re-arms the deadline with an assignment, not a timer created and cancelled
        #: (a uvloop timer each request cost ~1 µs of a 26 µs bare request).
        self._header_timer: asyncio.TimerHandle | None = None
        self._bytes_since_request = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._limited_server
        if server.open_connections >= server.cap:
            writable = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
            writable.write(OVER_CAPACITY)
            writable.close()
            self._force_close = True
            self._manager = None  # never registered: connection_lost has nothing to undo
            server.closed("over_capacity")
            return
        server.open_connections += 1
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._manager is not None:
            self._limited_server.open_connections -= 1
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._force_close:
            return
        before = self._request_count
        if self._header_deadline is None and not self._request_in_progress and not self._messages:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        self._bytes_since_request += len(data)
        super().data_received(data)
        if self._request_count != before:  # a request's headers are complete
            self._header_deadline = None
            self._bytes_since_request = 0

    def _arm(self) -> None:
        deadline = self._header_deadline = self._loop.time() + self._limited_server.header_timeout
        if self._header_timer is None:
            self._header_timer = self._loop.call_at(deadline, self._check_headers)

    def _check_headers(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return  # no request awaited: the next one arms again
        if self._loop.time() < deadline:  # re-armed since this timer was set
            self._header_timer = self._loop.call_at(deadline, self._check_headers)
            return
        self._header_deadline = None
        self._headers_overdue()

    def _headers_overdue(self) -> None:
        if self._request_in_progress or self._messages or self.transport is None:
            return  # a request is being answered: the handler's own bounds apply
        if self._bytes_since_request and not self._force_close:
            self.transport.write(TIMED_OUT)
        self._limited_server.closed("header_timeout")
        self.force_close()


    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """aiohttp's own answer to a request it could not parse (a bad request line or
        header, a header too large, a body that does not decode) as the JSON error every
        other refusal is, and not ``text/plain``. The parser's message is not repeated: it
        quotes the client's raw bytes. aiohttp logs the failure (redacted by
        ``web.MalformedRequestLogFilter``) and refuses if an answer was already sent."""
        super().handle_error(request, status, exc, message)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        code = "internal" if status >= 500 else "bad_request" if status == 400 else reason.lower().replace(" ", "_")
        text = "internal error" if status >= 500 else f"the request could not be parsed: {reason.lower()}"
        response = web.Response(
            body=msgspec.json.encode({"error": {"code": code, "message": text}}), status=status,
            content_type="application/json", headers={"Cache-Control": "no-store"},
        )
        response.force_close()
        return response


class LimitedServer(Server):
    """aiohttp's connection factory, building ``LimitedRequestHandler``s."""

    def __init__(self, *args: Any, cap: int, header_timeout: float, metrics: ServiceMetrics | None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cap = cap
        self.header_timeout = header_timeout
        self.open_connections = 0
        self._metrics = metrics

    def closed(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.connections_closed.labels(self._metrics.service, reason).inc()

    def __call__(self) -> RequestHandler:
        return LimitedRequestHandler(self, loop=self._loop, **self._kwargs)


class LimitedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections obey ``HttpSettings``."""

    def __init__(self, app: web.Application, limits: HttpSettings, metrics: ServiceMetrics | None,
                 **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout_seconds, **kwargs)
        self._limits = limits
        self._metrics = metrics

    async def _make_server(self) -> Server:
        plain = await super()._make_server()
        cap = connection_cap(self._limits.max_connections)
        if cap < self._limits.max_connections:
            log.warning("http.max_connections lowered from %d to %d to fit the process file limit",
                        self._limits.max_connections, cap)
        server = LimitedServer(
            plain.request_handler, request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation, loop=plain._loop,
            cap=cap, header_timeout=self._limits.header_timeout_seconds, metrics=self._metrics,
            **plain._kwargs,
        )
        if self._metrics is not None:
            self._metrics.open_connections.labels(self._metrics.service).set_function(
                lambda: server.open_connections)
        return server
