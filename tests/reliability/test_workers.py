"""``--workers N``: both services as N real processes sharing one port.

Every hit is counted exactly once whichever worker took it, each worker's metrics port
shows its own share (so Prometheus, scraping each, sums to the truth), a killed worker is
started again, and SIGTERM stops every worker gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal_pulse.core.embedded import free_port
from tests.conftest import SERVICE_TOKEN
from tests.reliability.conftest import NO_LIMITS
from tests.reliability.load import BROWSER_UA
from tests.reliability.procs import PORTAL_ORIGIN, Cluster, ServiceProcess

pytestmark = pytest.mark.slow

WORKERS = 2
HITS = 400


def free_port_pair() -> int:
    """A free port whose successor is free too (worker i answers on base + i)."""
    for _ in range(50):
        base = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
            return base
    raise AssertionError("no two consecutive free ports")


def worker_env(metrics_port: int, kind: str) -> dict[str, str]:
    return {**NO_LIMITS, f"PULSE_{kind.upper()}_WORKERS": str(WORKERS),
            f"PULSE_{kind.upper()}_METRICS_PORT": str(metrics_port)}


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def series_value(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples matching ``labels``; fails when there are none."""
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    assert values, f"no series {name}{labels} in the scrape"
    return sum(values)


async def scrape(http: aiohttp.ClientSession, port: int) -> str:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        return await response.text()


async def wait_answering(http: aiohttp.ClientSession, port: int, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        assert time.monotonic() < deadline, f"port {port} not answering after {timeout_seconds}s"
        await asyncio.sleep(0.05)


async def start_workers(shared: Cluster, kind: str) -> tuple[ServiceProcess, int]:
    metrics_port = free_port_pair()
    proc = await shared.process(kind, worker_env(metrics_port, kind)).astart()  # type: ignore[arg-type]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for index in range(WORKERS):
            await wait_answering(http, metrics_port + index, 20.0)
    assert len(children(proc.pid)) == WORKERS
    return proc, metrics_port


async def test_counter_workers_share_the_port_and_count_exactly(shared: Cluster) -> None:
    proc, metrics_port = await start_workers(shared, "counter")
    # A new connection per hit, so the kernel spreads them over the workers.
    connector = aiohttp.TCPConnector(force_close=True, limit=16)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:

        async def hit(n: int) -> int:
            body = {"site": "default", "kind": "pageview", "path": "/", "visitor": f"worker-visitor-{n}"}
            headers = {"Origin": PORTAL_ORIGIN, "User-Agent": BROWSER_UA}
            async with http.post(f"{proc.url}/v1/hit", json=body, headers=headers) as response:
                return response.status

        statuses = await asyncio.gather(*(hit(n) for n in range(HITS)))
        assert statuses == [204] * HITS
        shares = [
            series_value(await scrape(http, metrics_port + index), "pulse_ingest_hits_total",
                         site="default", result="counted")
            for index in range(WORKERS)
        ]
        async with http.get(f"{proc.url}/v1/stats", params={"site": "default"}) as response:
            stats = await response.json()
    assert sum(shares) == HITS, shares
    assert all(share > 0 for share in shares), f"one worker took every connection: {shares}"
    assert stats["total"] == HITS
    assert await proc.terminate() == 0


async def test_session_workers_answer_on_one_port(shared: Cluster) -> None:
    proc, metrics_port = await start_workers(shared, "session")
    connector = aiohttp.TCPConnector(force_close=True, limit=8)
    auth = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:

        async def create() -> int:
            async with http.post(f"{proc.url}/v1/sessions", json={}, headers=auth) as response:
                return response.status

        assert await asyncio.gather(*(create() for _ in range(60))) == [201] * 60
        served = [
            series_value(await scrape(http, metrics_port + index), "pulse_http_request_duration_seconds_count",
                         route="/v1/sessions", method="POST", status="201")
            for index in range(WORKERS)
        ]
    assert sum(served) == 60, served
    assert await proc.terminate() == 0


async def test_a_killed_worker_is_started_again_and_sigterm_stops_all(shared: Cluster) -> None:
    proc, metrics_port = await start_workers(shared, "counter")
    first = children(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        deadline = time.monotonic() + 15
        while True:
            now = children(proc.pid)
            if len(now) == WORKERS and first[0] not in now:
                break
            assert time.monotonic() < deadline, f"worker not restarted: {first} -> {now}"
            await asyncio.sleep(0.05)
        for index in range(WORKERS):
            await wait_answering(http, metrics_port + index, 20.0)
    workers = children(proc.pid)
    assert await proc.terminate(timeout_seconds=40) == 0
    assert [pid for pid in workers if running(pid)] == []
