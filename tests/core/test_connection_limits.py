"""``core.connection_limits`` in this process (``tests/reliability/test_http_limits.py``
drives the same limits against the real services): the cap from the file limit, the
503 beyond the cap and the count of open connections, the 408 past the header deadline
(from the first byte of a kept-alive connection's next request), the silent close, and
aiohttp's own refusals (a request it cannot parse, a handler's bug or timeout) as JSON.
Each wait is for the server's own close, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest
from aiohttp import web

from portal_pulse.core.connection_limits import (
    OVER_CAPACITY,
    RESERVED_DESCRIPTORS,
    TIMED_OUT,
    LimitedAppRunner,
    connection_cap,
)
from portal_pulse.core.embedded import free_port
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.settings import HttpSettings
from tests.metric_samples import sample, samples

HEADER_TIMEOUT = 0.2
#: The bound on any wait for the server: far above the header timeout.
WAIT = 5.0

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def test_the_cap_fits_the_file_limit() -> None:
    assert connection_cap(100, soft_limit=RESERVED_DESCRIPTORS + 1000) == 100
    assert connection_cap(5000, soft_limit=RESERVED_DESCRIPTORS + 1000) == 1000
    assert connection_cap(5000, soft_limit=RESERVED_DESCRIPTORS + 1) == 1
    assert connection_cap(5000, soft_limit=RESERVED_DESCRIPTORS) == 1  # never below one
    assert connection_cap(5000, soft_limit=resource.RLIM_INFINITY) == 5000
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_cap(10**9) == (10**9 if soft == resource.RLIM_INFINITY else max(1, soft - RESERVED_DESCRIPTORS))


@pytest.fixture
async def server() -> AsyncIterator[tuple[Connect, ServiceMetrics]]:
    """A one-route app behind ``LimitedAppRunner`` (cap 2); connect() opens a raw connection."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def late(request: web.Request) -> web.Response:
        raise TimeoutError

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/broken", broken)
    app.router.add_get("/late", late)
    metrics = ServiceMetrics("lim")
    limits = HttpSettings(header_timeout_seconds=HEADER_TIMEOUT, keepalive_timeout_seconds=30, max_connections=2)
    runner = LimitedAppRunner(app, limits, metrics, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    writers: list[asyncio.StreamWriter] = []

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
        return reader, writer

    yield connect, metrics
    for writer in writers:
        writer.close()
    await runner.cleanup()


async def scrape(metrics: ServiceMetrics) -> str:
    return (await metrics.render()).decode()


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes."""
    return await asyncio.wait_for(reader.read(), WAIT)


async def answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    body = await asyncio.wait_for(reader.readexactly(5), WAIT)
    return head + body


async def test_beyond_the_cap_a_connection_gets_503_and_the_open_ones_are_counted(
    server: tuple[Connect, ServiceMetrics], caplog: pytest.LogCaptureFixture,
) -> None:
    connect, metrics = server
    first = await connect()
    second = await connect()
    assert (await answered(*first)).endswith(b"hello")
    assert (await answered(*second)).endswith(b"hello")
    assert sample(await scrape(metrics), "pulse_http_open_connections", service="lim") == 2
    reader, _ = await connect()
    assert await read_all(reader) == OVER_CAPACITY
    assert sample(await scrape(metrics), "pulse_http_connections_closed_total", service="lim",
                  reason="over_capacity") == 1
    assert sample(await scrape(metrics), "pulse_http_open_connections", service="lim") == 2  # not counted
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the refused one closed cleanly
    reader, writer = first
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await read_all(reader)).endswith(b"hello")  # the server closed it, so it no longer counts it
    assert sample(await scrape(metrics), "pulse_http_open_connections", service="lim") == 1
    third = await connect()
    assert (await answered(*third)).endswith(b"hello")  # room again
    for reader, writer in (second, third):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await read_all(reader)
    assert sample(await scrape(metrics), "pulse_http_open_connections", service="lim") == 0


async def test_partial_headers_get_408_past_the_deadline(server: tuple[Connect, ServiceMetrics]) -> None:
    connect, metrics = server
    reader, writer = await connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert await read_all(reader) == TIMED_OUT
    body = TIMED_OUT.split(b"\r\n\r\n", 1)[1]
    assert msgspec.json.decode(body) == {
        "error": {"code": "timeout", "message": "the request's headers did not arrive in time"}}
    assert sample(await scrape(metrics), "pulse_http_connections_closed_total", service="lim",
                  reason="header_timeout") == 1


async def test_a_silent_connection_is_closed_without_an_answer(server: tuple[Connect, ServiceMetrics]) -> None:
    connect, metrics = server
    reader, _ = await connect()
    assert await read_all(reader) == b""
    assert sample(await scrape(metrics), "pulse_http_connections_closed_total", service="lim",
                  reason="header_timeout") == 1


async def test_a_kept_alive_connection_is_timed_from_its_next_request_s_first_byte(
    server: tuple[Connect, ServiceMetrics],
) -> None:
    connect, metrics = server
    reader, writer = await connect()
    assert (await answered(reader, writer)).endswith(b"hello")
    assert (await answered(reader, writer)).endswith(b"hello")  # a second request on it: no deadline hit
    writer.write(b"GET / HTTP/1.1\r\n")
    assert await read_all(reader) == TIMED_OUT
    assert sample(await scrape(metrics), "pulse_http_connections_closed_total", service="lim",
                  reason="header_timeout") == 1


async def test_a_request_after_part_of_the_deadline_gets_a_whole_one(server: tuple[Connect, ServiceMetrics]) -> None:
    """The connection's one timer, set when it opened, fires before the next request's own
    deadline: it moves on to that deadline, which is then kept (not cut short, not lost)."""
    connect, metrics = server
    loop = asyncio.get_running_loop()
    reader, writer = await connect()
    await asyncio.sleep(HEADER_TIMEOUT * 0.6)
    assert (await answered(reader, writer)).endswith(b"hello")
    started = loop.time()
    writer.write(b"GET / HTTP/1.1\r\n")
    assert await read_all(reader) == TIMED_OUT
    assert loop.time() - started >= HEADER_TIMEOUT * 0.9  # uvloop's timers have millisecond steps
    assert sample(await scrape(metrics), "pulse_http_connections_closed_total", service="lim",
                  reason="header_timeout") == 1


async def test_an_idle_kept_alive_connection_is_not_cut_by_the_header_deadline(
    server: tuple[Connect, ServiceMetrics],
) -> None:
    """Between requests only the keep-alive timeout (30 s here) applies. The one test
    that lets time pass on purpose: it must outlast the header deadline it checks."""
    connect, metrics = server
    reader, writer = await connect()
    assert (await answered(reader, writer)).endswith(b"hello")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(1), HEADER_TIMEOUT * 3)
    assert not reader.at_eof()
    assert (await answered(reader, writer)).endswith(b"hello")
    assert not [s for s in samples(await scrape(metrics)) if s.name == "pulse_http_connections_closed_total"]


@pytest.mark.parametrize(("request_bytes", "status", "reason", "code", "message"), [
    (b"NOT A REQUEST\r\n\r\n", 400, "Bad Request", "bad_request", "the request could not be parsed: bad request"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 400, "Bad Request", "bad_request",
     "the request could not be parsed: bad request"),
    (b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n", 500, "Internal Server Error", "internal", "internal error"),
    (b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n", 504, "Gateway Timeout", "internal", "internal error"),
], ids=["bad-line", "header-too-long", "handler-bug", "handler-timeout"])
async def test_aiohttp_s_own_refusals_are_answered_as_json(
    server: tuple[Connect, ServiceMetrics], request_bytes: bytes, status: int, reason: str, code: str, message: str,
) -> None:
    connect, _ = server
    reader, writer = await connect()
    writer.write(request_bytes)
    answer = await read_all(reader)
    head, body = answer.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0].split(" ", 1)[1] == f"{status} {reason}"
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    assert msgspec.json.decode(body) == {"error": {"code": code, "message": message}}
