"""Read answers shared between concurrent callers: a bounded cache of answers (encoded
bodies for series and pages, documents for the statistics), each at most
``max_age_seconds`` old, with single flight (concurrent misses of one key share one
load). Reads are then paid per distinct question per period, not per request, so a flood
of reads cannot take the event loop from hit ingestion."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from portal_pulse.core.clock import Clock

V = TypeVar("V")


class SharedReads(Generic[V]):
    """Answers by normalised query key (0 disables caching, not single flight)."""

    def __init__(self, clock: Clock, max_age_seconds: float, max_entries: int = 512) -> None:
        self._clock = clock
        self._max_age = max_age_seconds
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, float, V]] = {}
        self._inflight: dict[Hashable, asyncio.Task[V]] = {}

    def fresh(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        loaded_mono, loaded_at, body = entry
        if time.monotonic() - loaded_mono < self._max_age and abs(self._clock.now() - loaded_at) < self._max_age:
            return body
        return None

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        cached = self.fresh(key)
        if cached is not None:
            return cached
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        loaded_at = self._clock.now()
        body = await load()
        if self._max_age > 0:
            self._store(key, loaded_at, body)
        return body

    def _store(self, key: Hashable, loaded_at: float, body: V) -> None:
        entries = self._entries
        entries.pop(key, None)
        if len(entries) >= self._max_entries:  # the oldest half goes: bounded by entries, not by queries
            for old in list(entries)[: self._max_entries // 2]:
                del entries[old]
        entries[key] = (time.monotonic(), loaded_at, body)

    def forget(self, key: Hashable) -> None:
        """Drop a cached answer (its data changed)."""
        self._entries.pop(key, None)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
