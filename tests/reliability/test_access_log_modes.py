"""The access log modes of a real service process: the default writes one summary line
per route each interval (and at shutdown), ``requests`` a line per request."""

from __future__ import annotations

import aiohttp
import pytest

from tests.reliability.load import BROWSER_UA
from tests.reliability.procs import PORTAL_ORIGIN, Cluster

pytestmark = pytest.mark.slow


async def send_hits(url: str, count: int) -> None:
    async with aiohttp.ClientSession() as http:
        for n in range(count):
            body = {"site": "default", "kind": "pageview", "path": "/a", "visitor": f"log-visitor-{n}"}
            headers = {"Origin": PORTAL_ORIGIN, "User-Agent": BROWSER_UA}
            async with http.post(f"{url}/v1/hit", json=body, headers=headers) as response:
                assert response.status == 204


@pytest.mark.parametrize("mode", ["summary", "requests"])
async def test_access_log_mode_of_a_real_process(shared: Cluster, mode: str) -> None:
    proc = await shared.process("counter", {"PULSE_ACCESS_LOG": mode}).astart()
    await send_hits(proc.url, 4)
    assert await proc.terminate() == 0
    log = proc.log()
    per_request = [line for line in log.splitlines() if "aiohttp.access: POST /v1/hit 204 " in line]
    summary = [line for line in log.splitlines() if "access POST /v1/hit 204: 4 requests in " in line]
    if mode == "summary":
        assert (len(per_request), len(summary)) == (0, 1), log
    else:
        assert (len(per_request), len(summary)) == (4, 0), log
