"""A bounded asyncio load generator that remembers every answer it got.

Each request carries a key (for hits: the event id, with a matching visitor id), and the
generator records, per request, when it started and ended, the status (or the client-side
error) and the ``X-Pulse-Counted`` header, so a test can check afterwards that every 2xx
it saw is in Redis and that no request hung past a bound. Load is bounded both in count
and in time, and a connection failure (a killed service) backs off briefly instead of
spinning.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

#: A real browser's User-Agent: the default aiohttp one is (rightly) counted as a bot.
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)

#: Answers longer than this are treated as hung (client-side timeout); tests assert on it.
DEFAULT_REQUEST_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    key: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    call: Call
    target: str
    started: float
    ended: float
    status: int  # -1: no HTTP answer (connection refused/reset, client timeout)
    error: str = ""
    counted: str | None = None
    retry_after: str | None = None

    @property
    def key(self) -> str:
        return self.call.key

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class LoadResult:
    answers: list[Answer] = field(default_factory=list)

    @property
    def acked(self) -> list[Answer]:
        return [a for a in self.answers if a.ok]

    def acked_counted(self) -> list[Answer]:
        """2xx answers the service says it counted (no ``X-Pulse-Counted: 0``)."""
        return [a for a in self.acked if not (a.counted or "").startswith("0")]

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def errors(self) -> Counter[str]:
        return Counter(a.error for a in self.answers if a.error)

    def slowest(self) -> float:
        return max((a.seconds for a in self.answers), default=0.0)

    def between(self, start: float, end: float) -> list[Answer]:
        """Answers to requests started in [start, end) (monotonic clock)."""
        return [a for a in self.answers if start <= a.started < end]

    def summary(self) -> str:
        return f"{len(self.answers)} requests, statuses {dict(self.statuses())}, errors {dict(self.errors())}, " \
            f"slowest {self.slowest():.2f}s"


def hit_call(prefix: str, index: int, site: str = "default", kind: str = "pageview") -> Call:
    """A pageview from a fresh visitor with its own event id: one visit, one pageview."""
    key = f"{prefix}-e{index}"
    body = {"site": site, "kind": kind, "path": f"/load/{index % 7}", "visitor": f"{prefix}-v{index}", "id": key}
    return Call("POST", "/v1/hit", key, json=body)


async def run_load(
    targets: Sequence[str],
    make_call: Callable[[int], Call],
    *,
    total: int,
    concurrency: int = 8,
    max_seconds: float = 10.0,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
    stop: asyncio.Event | None = None,
    pause_seconds: float = 0.0,
    into: LoadResult | None = None,
) -> LoadResult:
    """Send up to ``total`` calls, round-robin over ``targets``, from ``concurrency``
    workers, for at most ``max_seconds`` or until ``stop`` is set. Answers are appended
    to ``into`` as they arrive, so a test can watch a load that is still running."""
    result = into if into is not None else LoadResult()
    counter = itertools.count()
    deadline = time.monotonic() + max_seconds
    stop = stop or asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=request_timeout)
    connector = aiohttp.TCPConnector(limit=concurrency * max(1, len(targets)), force_close=False)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            index = next(counter)
            if index >= total:
                return
            target = targets[index % len(targets)]
            call = make_call(index)
            started = time.monotonic()
            try:
                async with http.request(call.method, target + call.path, json=call.json,
                                        headers=call.headers) as response:
                    await response.read()
                    result.answers.append(Answer(
                        call, target, started, time.monotonic(), response.status,
                        counted=response.headers.get("X-Pulse-Counted"),
                        retry_after=response.headers.get("Retry-After"),
                    ))
            except (TimeoutError, aiohttp.ClientError) as exc:
                result.answers.append(Answer(call, target, started, time.monotonic(), -1,
                                             error=type(exc).__name__))
                await asyncio.sleep(0.02)  # a dead service: don't spin
            if pause_seconds:
                await asyncio.sleep(pause_seconds)

    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers={"User-Agent": BROWSER_UA}) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return result


def reason(answer: Answer) -> str | None:
    """The drop reason of ``X-Pulse-Counted: 0; reason=...``, or None if counted."""
    header = answer.counted or ""
    if not header.startswith("0"):
        return None
    _, _, rest = header.partition("reason=")
    return rest.strip() or "unknown"


async def replay(target: str, answers: Sequence[Answer], concurrency: int = 8) -> LoadResult:
    """Send the same calls again (same event ids): a recorded hit must come back as a duplicate."""
    calls = [a.call for a in answers]
    return await run_load([target], lambda i: calls[i], total=len(calls), concurrency=concurrency,
                          max_seconds=60.0)
