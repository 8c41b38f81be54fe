"""Coalesce concurrent calls into one Redis round trip per event-loop turn.

Many handlers each needing one independent Redis operation (a status read, a
session's touch) would each pay a pool checkout, a command, a wake-up on the reply
and a release. ``Coalescer.submit`` queues the item instead; on the next loop turn
everything queued is handed to the owner's ``flush`` function at once (one script
call or one pipeline for the whole batch), and each caller gets its own result or
its own error. Up to ``in_flight`` flushes run at once, each on its own connection;
items submitted while they run wait for the next one, so a busy service sends bigger
batches, not more of them.

Each round trip is bounded by the client's socket timeout; a failed round trip fails
every item in it with the same storage error (the callers answer 503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence["R | Exception"]]]


class Coalescer(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], max_batch: int = 512, in_flight: int = 2) -> None:
        self._flush_items = flush
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Run ``item`` in the next batch; its result, or its error raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if not self._scheduled and self._running < self._in_flight:
            self._scheduled = True
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        loop = asyncio.get_running_loop()
        while self._queue and self._running < self._in_flight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._running += 1
            task = loop.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush_items([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # the caller is gone
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._running -= 1
            if self._queue and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._start)

    async def close(self) -> None:
        """Wait for the round trips in flight."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
