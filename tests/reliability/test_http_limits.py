"""HTTP connection limits against real processes: a slowloris of silent and slow-header
connections is closed by the server within the header timeout while other clients are
answered; idle kept-alive connections are closed; beyond the connection cap new
connections get 503 at once and are counted."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from portal_pulse.core.connection_limits import RESERVED_DESCRIPTORS, connection_cap
from tests.reliability.probe import get_text, request
from tests.reliability.procs import Cluster

HEADER_TIMEOUT = 1.0
#: How late a close may come on a loaded 2-core machine (the timer fires on the loop).
SLACK = 2.0


async def closed_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bool,
                       started: float | None = None) -> float:
    """Seconds until the server closed the connection (sending a header line every 0.3 s
    when ``trickle``); what it answered is read and ignored."""
    started = time.monotonic() if started is None else started
    writer.write(b"GET /healthz HTTP/1.1\r\n" if trickle else b"")
    with contextlib.suppress(ConnectionError):
        while True:
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.3)
            except TimeoutError:
                if trickle:
                    writer.write(b"X-Slow: 1\r\n")
                continue
            if not data:
                break
    writer.close()
    return time.monotonic() - started


async def test_slowloris_is_closed_within_the_header_timeout_while_others_are_answered(shared: Cluster) -> None:
    counter = shared.service("counter", {"PULSE_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)})

    opened: list[float] = []
    all_open = asyncio.Event()

    async def hold(trickle: bool) -> float:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", counter.port)
        opened.append(started)
        if len(opened) == 300:
            all_open.set()
        return await closed_after(reader, writer, trickle, started)

    waits = [asyncio.create_task(hold(trickle=i % 2 == 1)) for i in range(300)]
    await asyncio.wait_for(all_open.wait(), 10)
    latencies = []  # other clients, while the 300 are held
    while not all(task.done() for task in waits) and time.monotonic() - min(opened) < HEADER_TIMEOUT + SLACK + 5:
        started = time.monotonic()
        status, _, _ = await request("GET", f"{counter.url}/v1/stats?site=default", seconds=HEADER_TIMEOUT + SLACK)
        assert status == 200
        latencies.append(time.monotonic() - started)
    closed = await asyncio.wait_for(asyncio.gather(*waits), 10)
    assert latencies, "no request was made while the slow connections were held"
    assert max(latencies) < HEADER_TIMEOUT, latencies  # answered without waiting for the slowloris
    assert max(closed) < HEADER_TIMEOUT + SLACK, sorted(closed)[-5:]
    assert min(closed) >= HEADER_TIMEOUT * 0.9
    metrics = await get_text(f"{counter.url}/metrics")
    assert 'pulse_http_connections_closed_total{reason="header_timeout",service="counter"} 300.0' in metrics


async def test_a_slow_request_after_a_kept_alive_one_is_timed_from_its_first_byte(shared: Cluster) -> None:
    session = shared.service("session", {"PULSE_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
                                         "PULSE_HTTP_KEEPALIVE_TIMEOUT_SECONDS": "30"})
    reader, writer = await asyncio.open_connection("127.0.0.1", session.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    await reader.readexactly(15)  # {"status":"ok"}
    await asyncio.sleep(HEADER_TIMEOUT * 1.5)  # idle between requests is keep-alive, not a header wait
    took = await closed_after(reader, writer, trickle=True)
    assert HEADER_TIMEOUT * 0.9 <= took < HEADER_TIMEOUT + SLACK


async def test_a_slow_body_is_refused_with_408_within_the_timeout(shared: Cluster) -> None:
    counter = shared.service("counter", {"PULSE_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)})
    reader, writer = await asyncio.open_connection("127.0.0.1", counter.port)
    started = time.monotonic()
    writer.write(b"POST /v1/hit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 60\r\n\r\n{")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT + SLACK + 2)
    assert head.startswith(b"HTTP/1.1 408"), head
    assert HEADER_TIMEOUT * 0.9 <= time.monotonic() - started < HEADER_TIMEOUT + SLACK
    writer.close()


async def test_idle_kept_alive_connections_are_closed(shared: Cluster) -> None:
    counter = shared.service("counter", {"PULSE_HTTP_KEEPALIVE_TIMEOUT_SECONDS": "1"})
    reader, writer = await asyncio.open_connection("127.0.0.1", counter.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(15)
    assert await asyncio.wait_for(reader.read(1), 1 + SLACK + 1) == b""
    assert time.monotonic() - started < 1 + SLACK
    writer.close()


async def test_beyond_the_cap_new_connections_get_503_and_are_counted(shared: Cluster) -> None:
    counter = shared.service("counter", {"PULSE_HTTP_MAX_CONNECTIONS": "40"})
    held = [await asyncio.open_connection("127.0.0.1", counter.port) for _ in range(40)]
    await asyncio.sleep(0.2)  # the server has accepted them all
    refused = 0
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", counter.port)
        head = await asyncio.wait_for(reader.read(4096), 5)
        assert head.startswith(b"HTTP/1.1 503"), head
        assert b'"over_capacity"' in head and b"Retry-After: 1" in head
        assert await asyncio.wait_for(reader.read(1), 5) == b""  # and closed
        writer.close()
        refused += 1
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.3)
    metrics = await get_text(f"{counter.url}/metrics")  # room again: answered
    assert f'pulse_http_connections_closed_total{{reason="over_capacity",service="counter"}} {refused}.0' in metrics
    assert 'pulse_http_open_connections{service="counter"} 1.0' in metrics


@pytest.mark.parametrize(("configured", "soft", "expected"), [
    (10_000, 1024, 1024 - RESERVED_DESCRIPTORS), (10_000, 1_048_576, 10_000), (100, 200, 1),
])
def test_the_cap_fits_the_file_limit(configured: int, soft: int, expected: int) -> None:
    assert connection_cap(configured, soft) == expected
