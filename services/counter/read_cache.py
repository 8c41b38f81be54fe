"""A small cache for the statistics reads (top lists, profile, CSV): each answer is kept
at most ``max_age_seconds`` (the ``/v1/stats`` cache period; 0 disables caching),
concurrent misses of one key share one Redis read (single flight), and at most
``max_entries`` answers are kept (the oldest goes first), so odd parameters cannot grow
the process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from services.core.clock import Clock


class ReadCache:
    def __init__(self, clock: Clock, max_age_seconds: float, max_entries: int = 256) -> None:
        self._clock = clock
        self._max_age = max_age_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, float, Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        self.loads = 0

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        loaded_mono, loaded_at, value = entry
        if time.monotonic() - loaded_mono < self._max_age and abs(self._clock.now() - loaded_at) < self._max_age:
            return True, value
        return False, None

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        found, value = self._fresh(key)
        if found:
            return value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        self.loads += 1
        now = self._clock.now()
        value = await load()
        if self._max_age > 0:
            self._entries[key] = (time.monotonic(), now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
