"""Reads cannot starve writes: hit throughput of a real counter process with and without
a flood of 1,000-bucket series reads, measured as a ratio in the same run.

The flood runs in its own client process, so the hit client's share of the CPU is the
same in every phase, and is paused (SIGSTOP) and resumed between short interleaved
phases, so a machine whose load drifts meanwhile weighs on both rates alike; the bound
(70%) is loose enough for a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from tests.reliability.conftest import NO_LIMITS
from tests.reliability.load import Call, run_load
from tests.reliability.procs import Cluster

PHASE_SECONDS = 1.5
ROUNDS = 4
SERIES = "/v1/stats/series?site=default&unit=hour&from=2026-10-01T00:00:00&to=2026-11-11T15:00:00"  # 1,000 buckets
FLOOD = f"""
import asyncio, re, sys, time
async def main(port, seconds):
    paths = [{SERIES!r}, "/v1/stats/series?site=default&unit=hour", "/v1/stats/series?site=default&unit=day"]
    done = 0
    deadline = time.monotonic() + seconds
    async def worker(i):
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            writer.write(f"GET {{paths[i % 3]}} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode())
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            await reader.readexactly(int(re.search(rb"Content-Length: (\\d+)", head).group(1)))
            done += 1
        writer.close()
    await asyncio.gather(*(worker(i) for i in range(CONNECTIONS)))
    print(done)
asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
""".replace("CONNECTIONS", "8")


def hit(index: int) -> Call:
    body = {"site": "default", "kind": "pageview", "path": f"/load/{index % 7}", "visitor": f"fl-v{index}"}
    return Call("POST", "/v1/hit", f"fl-{index}", json=body)


async def hits_in(url: str, seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    result = await run_load([url], hit, total=10**9, concurrency=16, max_seconds=seconds)
    ok = sum(1 for answer in result.answers if answer.status == 204)
    assert ok == len(result.answers), result.summary()
    return ok, time.monotonic() - started


async def test_a_series_flood_leaves_hits_at_70_percent_or_more(shared: Cluster) -> None:
    counter = shared.service("counter", NO_LIMITS)
    await hits_in(counter.url, 2.0)  # warm up: connections, scripts, the allocator
    seconds = str(2 * ROUNDS * PHASE_SECONDS + 2)
    flood = await asyncio.create_subprocess_exec(sys.executable, "-c", FLOOD, str(counter.port), seconds,
                                                 stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(1.0)  # the flood is at full speed
    alone, flooded = [0, 0.0], [0, 0.0]
    for _ in range(ROUNDS):  # interleaved, so the machine's own load drift falls on both alike
        flood.send_signal(signal.SIGSTOP)
        await asyncio.sleep(0.2)  # the reads in flight are answered
        count, took = await hits_in(counter.url, PHASE_SECONDS)
        alone = [alone[0] + count, alone[1] + took]
        flood.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.2)
        count, took = await hits_in(counter.url, PHASE_SECONDS)
        flooded = [flooded[0] + count, flooded[1] + took]
    out, _ = await asyncio.wait_for(flood.communicate(), 30)
    assert flood.returncode == 0
    reads = int(out.decode().strip())
    ratio = (flooded[0] / flooded[1]) / (alone[0] / alone[1])
    print(f"hits/s alone {alone[0] / alone[1]:.0f}, with {reads} reads {flooded[0] / flooded[1]:.0f}: {ratio:.2f}")
    assert reads > 50, "the flood did not run"
    assert ratio >= 0.7, f"hits/s alone {alone[0] / alone[1]:.0f}, flooded {flooded[0] / flooded[1]:.0f} ({ratio:.2f})"
