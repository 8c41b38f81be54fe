"""One batcher for every hot storage call of both services (hits, session reads,
session touches): many concurrent callers, one storage round trip.

A caller submits its item and waits. The first item of a loop turn starts a batch task;
when it runs (the next turn) it takes everything queued, up to ``max_batch``, hands it
to the owner's ``flush`` (one script call or pipeline for the whole batch) under a
timeout, and resolves every caller with its own result or its own error. Up to
``in_flight`` batches run at once; beyond that items wait for the next one, so a busy
service sends bigger batches, not more of them. No fixed delay: an idle service answers
at once. Nothing is acknowledged before storage has it.

Guarantees:

- **bounded queue**: beyond ``max_pending`` waiting items, 503 at once (counted);
- **a timeout per batch**: a batch that has not answered in ``timeout_seconds`` fails
  with 503 (each caller's future is always resolved);
- **a circuit breaker per storage path**: a failed or timed-out batch opens it, fails
  what was queued behind it and refuses new work at once with 503; after
  ``open_seconds`` the next item is a probe (sent alone; what arrives meanwhile is
  refused too) and its success closes the breaker, as does a successful PING;
- **lanes**: with ``lane_of`` (on a cluster: the node that owns the item's slot) each
  lane has its own queue, batches in flight and breaker, so a slow or dead shard
  delays and fails only its own items. Without it there is one lane.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

from portal_pulse.core.batch_metrics import OperationMetrics
from portal_pulse.core.breaker import BreakerState, CircuitBreaker
from portal_pulse.core.errors import StorageUnavailable
from portal_pulse.core.redis_conn import STORAGE_ERRORS

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: How long a storage path whose batch failed refuses work before a probe may go through.
BREAKER_OPEN_SECONDS = 0.5

Flush = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]


class _Pending(Generic[T, R]):
    __slots__ = ("future", "item")

    def __init__(self, item: T, future: asyncio.Future[R]) -> None:
        self.item = item
        self.future = future


class _Lane(Generic[T, R]):
    __slots__ = ("batches", "breaker", "gathering", "queue")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.queue: deque[_Pending[T, R]] = deque()
        self.batches: set[asyncio.Task[None]] = set()
        #: A batch task exists that has not taken its items yet: later items join it.
        self.gathering = False
        self.breaker = breaker


class Batcher(Generic[T, R]):
    def __init__(
        self,
        flush: Flush[T, R],
        metrics: OperationMetrics,
        *,
        max_batch: int,
        max_pending: int,
        in_flight: int,
        timeout_seconds: float,
        open_seconds: float = BREAKER_OPEN_SECONDS,
        lane_of: Callable[[T], Hashable] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._flush = flush
        self._metrics = metrics
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._in_flight = in_flight
        self._timeout = timeout_seconds
        self._open_seconds = open_seconds
        self._monotonic = monotonic
        self._lane_of = lane_of
        self._single: _Lane[T, R] = self._new_lane()
        self._lanes: dict[Hashable, _Lane[T, R]] = {}
        self._pending = 0
        self._closing = False
        metrics.watch(self.pending, self._open_lanes)

    def pending(self) -> int:
        """Items waiting for a batch (not those in a batch being sent)."""
        return self._pending

    def refusing(self, pinged: bool = False) -> bool:
        """Work is refused now (one storage path, standalone, with its breaker open or
        probing): what /readyz reports. ``pinged``: the server just answered a PING,
        which closes a breaker whose open period is over. Cluster lanes never make the
        whole process unready."""
        if pinged:
            self._single.breaker.answered()
        return self._single.breaker.refusing()

    def _new_lane(self) -> _Lane[T, R]:
        return _Lane(CircuitBreaker(self._open_seconds, self._monotonic))

    def _all_lanes(self) -> list[_Lane[T, R]]:
        return [self._single, *self._lanes.values()]

    def _open_lanes(self) -> int:
        return sum(1 for lane in self._all_lanes() if lane.breaker.is_open)

    def _lane(self, item: T) -> _Lane[T, R]:
        assert self._lane_of is not None
        key = self._lane_of(item)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = self._new_lane()
        return lane

    async def close(self) -> None:
        """Stop taking items and send everything already queued."""
        self._closing = True
        while True:
            lanes = self._all_lanes()
            for lane in lanes:
                self._kick(lane)
            running = {task for lane in lanes for task in lane.batches}
            if not running:
                return
            await asyncio.wait(running)

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result; ``StorageUnavailable`` (503) if it
        was refused or its batch failed."""
        if self._closing:
            raise StorageUnavailable("the service is shutting down; retry shortly")
        if self._pending >= self._max_pending:
            self._metrics.overloaded()
            raise StorageUnavailable("the service is waiting for storage; retry shortly")
        lane = self._single if self._lane_of is None else self._lane(item)
        if lane.breaker.state is not BreakerState.CLOSED and not lane.breaker.allow():
            self._metrics.refused()
            raise StorageUnavailable("storage is failing; retry shortly")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        lane.queue.append(_Pending(item, future))
        self._pending += 1
        self._kick(lane)
        return await future

    def _kick(self, lane: _Lane[T, R]) -> None:
        """Start a batch task if a slot is free. It takes its items when it first runs,
        on the next loop turn: every item queued in between joins."""
        if lane.gathering or not lane.queue or len(lane.batches) >= self._in_flight:
            return
        lane.gathering = True
        task = asyncio.get_running_loop().create_task(self._next_batch(lane))
        lane.batches.add(task)
        task.add_done_callback(lambda done: self._finished(lane, done))

    def _finished(self, lane: _Lane[T, R], task: asyncio.Task[None]) -> None:
        lane.batches.discard(task)
        self._kick(lane)

    async def _next_batch(self, lane: _Lane[T, R]) -> None:
        lane.gathering = False
        batch: list[_Pending[T, R]] = []
        queue = lane.queue
        while queue and len(batch) < self._max_batch:
            pending = queue.popleft()
            self._pending -= 1
            if not pending.future.done():  # a cancelled waiter is not sent
                batch.append(pending)
        self._kick(lane)  # more queued than one batch holds, or items arriving meanwhile
        if batch:
            await self._send(lane, batch)

    async def _send(self, lane: _Lane[T, R], batch: list[_Pending[T, R]]) -> None:
        started = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs the call in a
            # task of its own, one more task and one more loop turn per batch.
            async with asyncio.timeout(self._timeout):
                results = await self._flush([pending.item for pending in batch])
        except Exception as exc:
            self._metrics.failed()
            self._fail(batch, exc)
            if isinstance(exc, STORAGE_ERRORS):
                log.warning("a batch of %d failed: %s", len(batch), type(exc).__name__)
                self._trip(lane)
            else:
                log.exception("a batch of %d failed unexpectedly", len(batch))
                lane.breaker.succeeded()  # storage answered; a probe must not stay stuck
            return
        finally:
            self._metrics.observe(len(batch), time.perf_counter() - started)
        failures = 0
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                failures += isinstance(result, STORAGE_ERRORS)
                self._fail([pending], result)
            elif not pending.future.done():
                pending.future.set_result(result)
        if failures:
            self._metrics.failed()
        if failures == len(batch):
            self._trip(lane)
        else:
            lane.breaker.succeeded()  # (nothing queued behind a probe: the finished task kicks the lane)

    def _trip(self, lane: _Lane[T, R]) -> None:
        """Open the lane's breaker and fail what waits behind the failed batch."""
        lane.breaker.failed()
        queued = list(lane.queue)
        lane.queue.clear()
        self._pending -= len(queued)
        self._fail(queued, StorageUnavailable("storage is failing; retry shortly"))

    @staticmethod
    def _fail(batch: Sequence[_Pending[T, R]], exc: BaseException) -> None:
        """Storage failures become 503 for each caller; anything else (a bug) is the
        caller's to raise (a logged 500)."""
        storage = isinstance(exc, STORAGE_ERRORS)
        message = exc.message if isinstance(exc, StorageUnavailable) else "storage is not answering; retry shortly"
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(StorageUnavailable(message) if storage else exc)
                pending.future.exception()  # mark retrieved: a gone waiter must not warn
