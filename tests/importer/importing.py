"""Helpers of the end-to-end import tests: run the real command, snapshot the whole Redis."""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass
from typing import Any

import redis

from portal_pulse.cli import main

TEMPLATE = "/news/{cat}/{alias}-{id}.html"


@dataclass
class Run:
    code: int
    out: str
    err: str


async def run_import(*args: str, env: dict[str, str] | None = None) -> Run:
    """``portal-pulse import nukeviet ARGS`` in a thread (the command runs its own event loop)."""
    def call() -> Run:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["import", "nukeviet", *args], env=env or {})
        return Run(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(call)


def snapshot(url: str) -> dict[str, Any]:
    """Every key of the server with its type, value and whether it expires: a second import
    must leave it equal."""
    client = redis.Redis.from_url(url)
    try:
        found: dict[str, Any] = {}
        for raw in client.scan_iter(count=1000):
            key = raw.decode()
            raw_kind = client.type(key)
            kind = raw_kind.decode() if isinstance(raw_kind, bytes) else raw_kind
            value: Any
            if kind == "hash":
                value = client.hgetall(key)
            elif kind == "set":
                value = sorted(client.smembers(key))
            elif kind == "string":
                value = client.get(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            else:
                value = client.dump(key)
            found[key] = (kind, value, client.ttl(key) >= 0)  # whether it expires (its TTL runs down meanwhile)
        return found
    finally:
        client.close()
