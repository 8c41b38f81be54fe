"""Small helpers the reliability tests share: poll an endpoint until it answers a status,
read JSON and metrics, and dump everything a Redis server holds."""

from __future__ import annotations

import asyncio
import io
import json as json_module
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import redis

from portal_pulse.session.keys import DUE_INDEXES, SESSION_EVENTS_STREAMS
from tests.reliability.load import BROWSER_UA


async def wait_for_status(url: str, status: int, within: float, *, request_timeout: float = 1.0) -> float:
    """Poll ``url`` until it answers ``status``; seconds it took (raises after ``within``)."""
    started = time.monotonic()
    last: object = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=request_timeout)) as http:
        while True:
            try:
                async with http.get(url) as response:
                    await response.read()
                    last = response.status
                    if response.status == status:
                        return time.monotonic() - started
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = type(exc).__name__
            if time.monotonic() - started > within:
                raise AssertionError(f"{url} did not answer {status} within {within}s (last: {last})")
            await asyncio.sleep(0.05)


async def until(condition: Callable[[], bool], within: float, what: str = "condition") -> float:
    """Wait until ``condition()`` holds; seconds it took (raises after ``within``)."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(0.02)


async def request(
    method: str, url: str, *, json: Any = None, data: bytes | None = None, headers: dict[str, str] | None = None,
    seconds: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request: status, headers, body (client errors propagate)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds),
                                     headers={"User-Agent": BROWSER_UA}) as http, \
            http.request(method, url, json=json, data=io.BytesIO(data) if data is not None else None,
                         headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def create_session(base: str, token: str, **body: Any) -> dict[str, Any]:
    status, _, raw = await request("POST", f"{base}/v1/sessions", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
    assert status == 201, f"create session: {status} {raw[:300]!r}"
    created: dict[str, Any] = json_module.loads(raw)
    return created


async def get_json(url: str, headers: dict[str, str] | None = None, seconds: float = 5.0) -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as http, \
            http.get(url, headers=headers) as response:
        assert response.status == 200, f"GET {url}: {response.status} {await response.text()}"
        return await response.json()


async def get_text(url: str, seconds: float = 5.0) -> str:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as http, \
            http.get(url) as response:
        assert response.status == 200, f"GET {url}: {response.status}"
        return await response.text()


def _b(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def dump_redis(url: str) -> bytes:
    """Every key and every value of every type a server holds, as one searchable blob."""
    client: Any = redis.Redis.from_url(url, socket_timeout=5)  # untyped: redis-py's unions help nobody here
    parts: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            parts.append(b"KEY " + _b(key))
            kind = _b(client.type(key)).decode()
            if kind == "string":  # HyperLogLogs are strings too: their raw registers are searched
                parts.append(_b(client.get(key) or b""))
            elif kind == "hash":
                for field, value in client.hgetall(key).items():
                    parts += [_b(field), _b(value)]
            elif kind == "set":
                parts += [_b(m) for m in client.smembers(key)]
            elif kind == "zset":
                parts += [_b(member) for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "list":
                parts += [_b(m) for m in client.lrange(key, 0, -1)]
            elif kind == "stream":
                for entry_id, fields in client.xrange(key, "-", "+"):
                    parts.append(_b(entry_id))
                    for field, value in fields.items():
                        parts += [_b(field), _b(value)]
            else:
                raise AssertionError(f"unexpected key type {kind} for {key!r}")
    finally:
        client.close()
    return b"\n".join(parts)


def stream_entries(url: str, key: str) -> list[dict[str, str]]:
    """The fields of every entry of a Redis Stream, decoded."""
    client: Any = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return [{_b(k).decode(): _b(v).decode() for k, v in fields.items()} for _, fields in client.xrange(key)]
    finally:
        client.close()


def session_events(url: str) -> list[dict[str, str]]:
    """Every entry of the session event streams (one per bucket), in the order written."""
    client: Any = redis.Redis.from_url(url, socket_timeout=5)
    try:
        entries = [entry for stream in SESSION_EVENTS_STREAMS for entry in client.xrange(stream)]
    finally:
        client.close()
    entries.sort(key=lambda entry: tuple(int(part) for part in _b(entry[0]).split(b"-")))
    return [{_b(k).decode(): _b(v).decode() for k, v in fields.items()} for _, fields in entries]


def due_sessions(url: str) -> int:
    """Sessions in the due indexes of every bucket."""
    return sum(zcard(url, due) for due in DUE_INDEXES)


def zcard(url: str, key: str) -> int:
    client: Any = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return int(client.zcard(key))
    finally:
        client.close()
