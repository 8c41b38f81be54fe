"""The promise every other fault test leans on: the embedded default (``appendonly yes``
+ ``appendfsync always``) fsyncs each write before it answers, so a write Redis
acknowledged survives SIGKILL of Redis itself, even under concurrent load."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from portal_pulse.core.embedded import EmbeddedServer


@pytest.mark.slow
async def test_every_acknowledged_write_survives_sigkill_of_redis(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "aof").start()
    acked: list[int] = []
    try:
        check = redis.Redis.from_url(server.url)
        assert check.config_get("appendonly") == {"appendonly": "yes"}
        assert check.config_get("appendfsync") == {"appendfsync": "always"}
        check.close()
        client = AsyncRedis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        counter = iter(range(1_000_000))
        enough = asyncio.Event()

        async def writer() -> None:
            while True:
                index = next(counter)
                try:
                    # the shapes the services use: a counter, a set member and a stream entry
                    async with client.pipeline(transaction=True) as pipe:
                        pipe.incr("pulse:test:count")
                        pipe.sadd("pulse:test:ids", index)
                        pipe.xadd("pulse:test:stream", {"i": str(index)})
                        await pipe.execute()
                except (redis.RedisError, OSError):
                    return
                acked.append(index)
                if len(acked) >= 300:
                    enough.set()

        writers = [asyncio.create_task(writer()) for _ in range(8)]
        await asyncio.wait_for(enough.wait(), 20)
        server.kill()  # SIGKILL mid-write: no shutdown, no final fsync
        await asyncio.wait_for(asyncio.gather(*writers), 10)
        with contextlib.suppress(Exception):
            await client.aclose()

        server.start()
        check = redis.Redis.from_url(server.url)
        stored = {int(m) for m in check.smembers("pulse:test:ids")}
        count = int(check.get("pulse:test:count") or 0)
        stream = check.xlen("pulse:test:stream")
        check.close()
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
        # a write may have been applied whose answer was lost in the kill: at most one per writer
        assert len(acked) <= count <= len(acked) + len(writers)
        assert stream == count == len(stored)
    finally:
        server.stop()
