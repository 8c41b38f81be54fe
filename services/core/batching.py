"""Coalesce concurrent Redis calls into one pipelined round trip per event-loop turn.

Many handlers each needing one independent command (a status read, a session's
atomic script) would each pay a pool checkout, a send, a wake-up on the reply and a
release. ``PipelineBatcher.call`` queues the command instead; on the next loop turn
everything queued goes out as one pipeline (no transaction: the commands are
independent), and each caller gets its own reply or its own error. Up to ``in_flight``
pipelines run at once, each on its own connection; calls made while they run wait for
the next one, so a busy service sends bigger pipelines, not more of them.

Each round trip is bounded by the client's socket timeout; a failed round trip fails
every call in it with the same storage error (the callers answer 503).
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

Call = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class PipelineBatcher:
    def __init__(self, client: Redis, max_batch: int = 512, in_flight: int = 2) -> None:
        self._client = client
        self._max_batch = max_batch
        self._in_flight = in_flight
        self._queue: list[Call] = []
        self._running = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.round_trips = 0

    async def call(self, *args: Any) -> Any:
        """Run one command (``"HGETALL", key``) in the next pipeline; its reply or error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((args, future))
        if not self._scheduled and self._running < self._in_flight:
            self._scheduled = True
            loop.call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        while self._queue and self._running < self._in_flight:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[Call]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.execute_command(*args)
                self.round_trips += 1
                replies = await pipe.execute(raise_on_error=False)
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
            for (_, future), reply in zip(batch, replies, strict=True):
                if future.done():  # the caller is gone
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._running -= 1
            if self._queue and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._start)

    async def close(self) -> None:
        """Wait for the round trips in flight."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
