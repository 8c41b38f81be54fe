"""An open-loop, fixed-rate HTTP load generator (wrk2-style), run as its own process:
``python -m bench.fixedrate --url URL --rate R --seconds S``.

Request i is due at ``start + i / rate`` whatever happened to earlier ones; when no
connection is free it waits in a queue, and its latency is counted from its due time,
so a stall shows up in the percentiles instead of silently lowering the load
(no coordinated omission). Each request is a JSON hit with a distinct visitor. Prints
one JSON line: sent, 2xx, other statuses, achieved rate and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
import typing
from collections import deque
from urllib.parse import urlsplit

from bench.procs import REPO, python_argv
from portal_pulse.core.runner import install_uvloop

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 fixedrate"


def hit_request(host: str, run: str, n: int) -> bytes:
    body = (f'{{"site":"default","kind":"pageview","path":"/p/{n % 1000}",'
            f'"visitor":"f{run}-{n}"}}').encode()
    # Each visitor from an address of its own through the trusted proxy, as behind nginx,
    # so the default inflation limits see a crowd and not one address.
    address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    head = (f"POST /v1/hit HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {UA}\r\nX-Forwarded-For: {address}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head + body


class Conn(asyncio.Protocol):
    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.due = due
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            status = int(head.split(" ", 2)[1])
            self.busy = False
            self.gen.completed(self, status, self.due)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost += 1
        self.transport = None


class Generator:
    def __init__(self, host: str, run: str) -> None:
        self.host, self.run = host, run
        self.idle: deque[Conn] = deque()
        self.queue: deque[tuple[bytes, float]] = deque()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.sent = 0
        self.lost = 0
        self.outstanding = 0

    def issue(self, n: int, due: float) -> None:
        request = hit_request(self.host, self.run, n)
        self.sent += 1
        self.outstanding += 1
        if self.idle:
            self.idle.popleft().send(request, due)
        else:
            self.queue.append((request, due))

    def completed(self, conn: Conn, status: int, due: float) -> None:
        self.latencies.append(time.monotonic() - due)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.outstanding -= 1
        if self.queue:
            request, next_due = self.queue.popleft()
            conn.send(request, next_due)
        else:
            self.idle.append(conn)


async def drive(url: str, rate: float, seconds: float, connections: int, run: str) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    gen = Generator(f"{host}:{port}", run)
    loop = asyncio.get_running_loop()
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: Conn(gen), host, port)
        gen.idle.append(conn)
    start = time.monotonic() + 0.05
    total = int(rate * seconds)
    n = 0
    while n < total:
        now = time.monotonic()
        due_count = min(total, int((now - start) * rate) + 1) if now >= start else 0
        while n < due_count:
            gen.issue(n, start + n / rate)
            n += 1
        await asyncio.sleep(0.0005)
    finish_by = time.monotonic() + 10
    while gen.outstanding and time.monotonic() < finish_by:  # noqa: ASYNC110 (a bounded drain)
        await asyncio.sleep(0.005)
    elapsed = time.monotonic() - start
    lat = sorted(gen.latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0

    ok = sum(count for status, count in gen.statuses.items() if 200 <= status < 300)
    return {
        "target_rate": rate, "achieved_rate": len(lat) / elapsed if elapsed > 0 else 0.0,
        "sent": gen.sent, "answered": len(lat), "s2xx": ok, "statuses": gen.statuses,
        "outstanding": gen.outstanding, "lost_connections": gen.lost, "connections": connections,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
    }


def run_fixed_rate(url: str, rate: float, seconds: float, run: str) -> dict[str, typing.Any]:
    """Run this client in its own process against ``url`` and return its result."""
    out = subprocess.run(
        python_argv("-m", "bench.fixedrate", "--url", url, "--rate", f"{rate:.0f}", "--seconds", str(seconds),
                    "--run", run),
        capture_output=True, text=True, cwd=REPO, timeout=seconds + 60, check=False,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("FIXEDRATE ")), None)
    if line is None:
        raise RuntimeError(f"fixed-rate client failed:\n{out.stderr[-2000:]}")
    result: dict[str, typing.Any] = json.loads(line.split(" ", 1)[1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fixedrate")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--run", default="r")
    args = parser.parse_args()
    install_uvloop()
    result = asyncio.run(drive(args.url, args.rate, args.seconds, args.connections, args.run))
    print("FIXEDRATE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
