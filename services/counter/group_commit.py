"""Group commit: many concurrent hits, one Redis round trip.

A handler enqueues its hit with a future and waits. The first hit of a loop turn starts
a commit task; when that task runs (the next turn) it takes everything queued (up to
``batch_max_hits``), commits it with one call, and resolves every future with that hit's
result. Up to ``in_flight`` commits (default 2) run at once, each on its own connection,
so the service keeps batching while Redis works on the previous batch; beyond that, new
hits pile up for the next one, started when a commit finishes. There is no writer task
to wake: a hit waits one loop turn less before it is sent. There is no fixed delay, so an
idle service answers at once and a busy one commits bigger batches. Hits are
independent (the script decides each one atomically), so concurrent batches need no
order. A future fails when the commit failed or timed out; nothing is
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

from services.core.errors import unavailable
from services.core.redis_conn import STORAGE_ERRORS
from services.counter.hit import CommitResult, Hit
from services.counter.metrics import CounterMetrics
from services.counter.store import HitStore

log = logging.getLogger(__name__)


class CommitFailed(Exception):
    """The hit was not recorded (Redis failed, timed out, or the writer is closed)."""


class Pending:
    __slots__ = ("future", "hit")

    def __init__(self, hit: Hit, future: asyncio.Future[CommitResult]) -> None:
        self.hit = hit
        self.future = future


class GroupCommitWriter:
    def __init__(
        self,
        store: HitStore,
        metrics: CounterMetrics,
        batch_max_hits: int,
        timeout_seconds: float,
        max_pending: int | None = None,
        in_flight: int = 2,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._batch_max = batch_max_hits
        self._max_pending = max_pending if max_pending is not None else batch_max_hits * 8
        self._timeout = timeout_seconds
        self._queue: deque[Pending] = deque()
        self._started = False
        self._closing = False
        self._in_flight = in_flight
        self._commits: set[asyncio.Task[None]] = set()
        #: A commit task exists that has not taken its batch yet: later hits join it.
        self._gathering = False
        # Read at scrape time: no gauge update per hit.
        metrics.pending_hits.set_function(lambda: len(self._queue))

    def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        """Stop taking hits and commit everything already queued."""
        self._closing = True
        while self._commits or self._queue:
            self._kick()
            await asyncio.wait(set(self._commits))

    async def submit(self, hit: Hit) -> CommitResult:
        """Queue ``hit`` and wait until it is durable; raise 503 ``ApiError`` otherwise."""
        if self._closing or not self._started:
            raise unavailable("the counter is shutting down; retry shortly")
        if len(self._queue) >= self._max_pending:
            self._metrics.overloaded()
            raise unavailable("the counter is waiting for storage; retry shortly")
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(hit, future))
        self._kick()
        try:
            # Every future is resolved: each commit is bounded by its own timeout and a
            # failed commit fails all of its hits.
            return await future
        except CommitFailed as exc:
            raise unavailable() from exc

    def _kick(self) -> None:
        """Start a commit task if a slot is free. It takes its batch when it first runs,
        on the next loop turn: every hit queued in between (this turn's handlers) joins."""
        if self._gathering or not self._queue or len(self._commits) >= self._in_flight:
            return
        self._gathering = True
        task = asyncio.get_running_loop().create_task(self._commit_next())
        self._commits.add(task)
        task.add_done_callback(self._committed)

    async def _commit_next(self) -> None:
        self._gathering = False
        batch: list[Pending] = []
        while self._queue and len(batch) < self._batch_max:
            pending = self._queue.popleft()
            if not pending.future.done():  # a cancelled waiter is not written
                batch.append(pending)
        self._kick()  # more queued than one batch holds, or hits arriving meanwhile
        if batch:
            await self._commit(batch)

    def _committed(self, task: asyncio.Task[None]) -> None:
        self._commits.discard(task)
        self._kick()

    async def _commit(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        self._metrics.batch_size.observe(len(batch))
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs the commit in a
            # task of its own, one more task and one more loop turn per commit.
            async with asyncio.timeout(self._timeout):
                results = await self._store.commit([p.hit for p in batch])
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
        # Counted once per batch (a few increments, not three per hit), and even for hits
        # whose waiter gave up: they are in Redis.
        self._metrics.record_batch(
            (pending.hit, result) for pending, result in zip(batch, results, strict=True)
            if isinstance(result, CommitResult)
        )
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, CommitResult):
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
