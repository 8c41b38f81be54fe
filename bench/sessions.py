"""Session-service set-ups and scale runs: create sessions through the API, the
100,000-session scheduler-lag run, Redis memory per live session."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis

from bench import probes
from bench.stack import SERVICE_TOKEN
from portal_pulse.core.keys import SESSION_EVENTS_STREAMS


async def create_sessions(base_url: str, bodies: Sequence[dict[str, Any]], concurrency: int = 64) -> list[str]:
    """Create one session per body through ``POST /v1/sessions``; their ids, in order."""
    ids: list[str] = [""] * len(bodies)
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}", "Content-Type": "application/json"}
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as http:

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(bodies):
                index = next_index
                next_index += 1
                async with http.post("/v1/sessions", data=json.dumps(bodies[index])) as response:
                    if response.status != 201:
                        raise RuntimeError(f"create answered {response.status}: {await response.text()}")
                    ids[index] = str((await response.json())["id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def created_sessions(base_url: str, count: int) -> list[str]:
    """The ids of ``count`` sessions with the server's defaults, created through the API."""
    return asyncio.run(create_sessions(base_url, [{} for _ in range(count)]))


def write_ids(path: Path, ids: Sequence[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


@dataclass(frozen=True)
class LagResult:
    sessions: int
    create_seconds: float
    window_seconds: float
    memory_per_session_bytes: float
    stream_bytes: int
    prompts: int
    expiries: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    histogram_p99_le_s: float | None
    late_over_1s: int
    missing: int


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def scheduler_lag(base_url: str, client: redis.Redis, count: int, idle_range: tuple[int, int],
                  prompt_seconds: int, grace_ms: int) -> LagResult:
    """Create ``count`` sessions with short idle timeouts spread over a window, wait until
    every one has expired, then compare each ``prompt``/``expired`` event's time in the
    stream (the entry id: when Redis appended it) with its due time (created + idle -
    prompt, created + idle + grace)."""
    rng = random.Random(5)
    bodies = [{"idle_timeout": rng.randint(*idle_range), "prompt_seconds": prompt_seconds} for _ in range(count)]
    client.delete(*SESSION_EVENTS_STREAMS)
    base_memory = probes.used_memory(client)
    started = time.monotonic()
    ids = asyncio.run(create_sessions(base_url, bodies))
    create_seconds = time.monotonic() - started
    live_memory = probes.used_memory(client)
    stream_bytes = sum(int(client.memory_usage(stream, samples=0) or 0) for stream in SESSION_EVENTS_STREAMS)
    per_session = (live_memory - base_memory - stream_bytes) / count
    wait_until = started + idle_range[1] + grace_ms / 1000 + create_seconds + 3
    while time.monotonic() < wait_until:
        time.sleep(0.5)
    created: dict[bytes, int] = {}
    timing: dict[bytes, int] = {}
    announced: dict[tuple[bytes, bytes], int] = {}
    for stream in SESSION_EVENTS_STREAMS:  # one per session bucket
        last_id = "-"
        while True:
            entries: Any = client.xrange(stream, min=last_id, max="+", count=10_000)
            if last_id != "-":
                entries = entries[1:]
            if not entries:
                break
            for entry_id, fields in entries:
                kind, digest = fields[b"type"], fields[b"session"]
                appended_ms = int(entry_id.split(b"-")[0])
                if kind == b"created":
                    created[digest] = int(fields[b"at"])
                else:
                    announced[(kind, digest)] = appended_ms
            last_id = entries[-1][0].decode()
    from portal_pulse.session.keys import session_digest

    lags: list[float] = []
    missing = 0
    for session_id, body in zip(ids, bodies, strict=True):
        digest = session_digest(session_id).encode()
        timing[digest] = int(body["idle_timeout"]) * 1000
        at = created.get(digest)
        if at is None:
            missing += 2
            continue
        due = {b"prompt": at + timing[digest] - prompt_seconds * 1000, b"expired": at + timing[digest] + grace_ms}
        for kind, due_ms in due.items():
            seen = announced.get((kind, digest))
            if seen is None:
                missing += 1
            else:
                lags.append(float(seen - due_ms))
    metrics = probes.http_text(f"{base_url}/metrics")
    hist = probes.histogram(metrics, "pulse_session_scheduler_lag_seconds")
    prompts = sum(1 for kind, _ in announced if kind == b"prompt")
    expiries = sum(1 for kind, _ in announced if kind == b"expired")
    return LagResult(
        sessions=count, create_seconds=create_seconds, window_seconds=idle_range[1] - idle_range[0] + create_seconds,
        memory_per_session_bytes=per_session, stream_bytes=stream_bytes, prompts=prompts, expiries=expiries,
        lag_p50_ms=_pct(lags, 0.5), lag_p99_ms=_pct(lags, 0.99), lag_max_ms=max(lags) if lags else 0.0,
        histogram_p99_le_s=probes.histogram_quantile(hist, 0.99),
        late_over_1s=sum(1 for lag in lags if lag > 1000), missing=missing,
    )
