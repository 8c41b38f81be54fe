"""Group commit: many concurrent hits, one Redis round trip.

A handler enqueues its hit with a future and waits. One writer task takes everything
queued (up to ``batch_max_hits``), commits it with one pipelined call, and resolves every
future with that hit's result. While a commit is in flight, new hits pile up for the next
one: there is no fixed delay, so an idle service answers at once and a busy one commits
bigger batches. A future fails when the commit failed or timed out; nothing is
acknowledged before Redis has it. Closing flushes everything already queued.

The queue is bounded (``max_pending``): when Redis stalls, hits beyond it are refused
with 503 at once instead of piling up in memory behind a commit that will time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from services.core.errors import unavailable
from services.core.redis_conn import STORAGE_ERRORS
from services.counter.hit import CommitResult, Hit
from services.counter.metrics import CounterMetrics
from services.counter.store import HitStore

log = logging.getLogger(__name__)


class CommitFailed(Exception):
    """The hit was not recorded (Redis failed, timed out, or the writer is closed)."""


@dataclass
class Pending:
    hit: Hit
    future: asyncio.Future[CommitResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitWriter:
    def __init__(
        self,
        store: HitStore,
        metrics: CounterMetrics,
        batch_max_hits: int,
        timeout_seconds: float,
        max_pending: int | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._batch_max = batch_max_hits
        self._max_pending = max_pending if max_pending is not None else batch_max_hits * 8
        self._timeout = timeout_seconds
        self._queue: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="counter-group-commit")

    async def close(self) -> None:
        """Stop taking hits and commit everything already queued."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def submit(self, hit: Hit) -> CommitResult:
        """Queue ``hit`` and wait until it is durable; raise 503 ``ApiError`` otherwise."""
        if self._closing or self._task is None:
            raise unavailable("the counter is shutting down; retry shortly")
        if len(self._queue) >= self._max_pending:
            self._metrics.overloaded()
            raise unavailable("the counter is waiting for storage; retry shortly")
        pending = Pending(hit)
        self._queue.append(pending)
        self._metrics.pending_hits.set(len(self._queue))
        self._wake.set()
        try:
            # The writer resolves every future within its own commit timeout; this bound
            # only covers a hit that waits behind several failing batches.
            return await asyncio.wait_for(pending.future, self._timeout * 2 + 1)
        except (CommitFailed, TimeoutError) as exc:
            raise unavailable() from exc

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch: list[Pending] = []
            while self._queue and len(batch) < self._batch_max:
                pending = self._queue.popleft()
                if not pending.future.done():  # a cancelled waiter is not written
                    batch.append(pending)
            self._metrics.pending_hits.set(len(self._queue))
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        self.batches += 1
        self._metrics.batch_size.observe(len(batch))
        try:
            results = await asyncio.wait_for(self._store.commit([p.hit for p in batch]), self._timeout)
        except STORAGE_ERRORS as exc:
            self._metrics.redis_errors("commit")
            log.warning("commit of %d hits failed: %s", len(batch), type(exc).__name__)
            self._fail(batch, exc)
            return
        except Exception as exc:
            self._metrics.redis_errors("commit")
            log.exception("commit of %d hits failed unexpectedly", len(batch))
            self._fail(batch, exc)
            return
        finally:
            self._metrics.commit_duration.observe(time.perf_counter() - started)
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, CommitResult):
                self._metrics.record(pending.hit, result)  # recorded even if its waiter gave up
                if not pending.future.done():
                    pending.future.set_result(result)
            else:
                self._metrics.redis_errors("commit")
                self._fail([pending], result)

    @staticmethod
    def _fail(batch: list[Pending], exc: BaseException) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(CommitFailed(type(exc).__name__))
                with contextlib.suppress(Exception):
                    pending.future.exception()  # mark retrieved: a gone waiter must not warn
