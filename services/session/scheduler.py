"""The due-time scheduler every process runs.

It sleeps until the earliest due time in the shared index (never longer than
``scheduler_max_sleep_seconds``, so a session created by another process is noticed in
time), then runs one atomic script that pops the due sessions, settles them and
re-inserts their next due time. Several processes may run it against one Redis: the
script is atomic, so each transition is announced exactly once, and a dead process's
due work is simply done by the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from services.core.clock import Clock
from services.core.redis_conn import STORAGE_ERRORS
from services.session.metrics import SessionMetrics
from services.session.store import SessionStore

log = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.01
MAX_BATCHES_PER_STEP = 100  # bounded work per step; the rest waits for the next one
ERROR_BACKOFF_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)


class Scheduler:
    def __init__(self, store: SessionStore, clock: Clock, metrics: SessionMetrics, max_sleep_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._max_sleep = max_sleep_seconds  # the batch size is the store's (session.scheduler_batch)
        self._stopping = False

    def stop(self) -> None:
        """Ask the loop to end. Checked every turn, because a cancellation that lands
        inside a Redis call may surface as a connection error instead."""
        self._stopping = True

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    async def run_once(self) -> int:
        """Announce every transition due now (batch by batch); the number announced."""
        announced = 0
        for _ in range(MAX_BATCHES_PER_STEP):
            now_ms = self._now_ms()
            events = await self._store.announce_due(now_ms)
            for kind, due_ms in events:
                self._metrics.count_transitions([kind])
                self._metrics.scheduler_lag.observe(max(0.0, (now_ms - due_ms) / 1000))
            announced += len(events)
            next_due = await self._store.next_due_ms()
            if next_due is None or next_due > now_ms:
                break
        return announced

    async def _sleep_seconds(self) -> float:
        next_due = await self._store.next_due_ms()
        if next_due is None:
            return self._max_sleep
        wait = (next_due - self._now_ms()) / 1000
        # Never zero: with a clock that does not move (tests) the loop must not spin.
        return min(self._max_sleep, max(MIN_SLEEP_SECONDS, wait))

    async def run_forever(self, beat: Callable[[], None] = lambda: None) -> None:
        """Step until stopped; ``beat()`` after every step that succeeded. Storage errors
        are retried here; anything else ends the loop (``core.supervise`` restarts it)."""
        failures = 0
        while not self._stopping:
            try:
                await self.run_once()
                delay = await self._sleep_seconds()
                failures = 0
                beat()
            except STORAGE_ERRORS as exc:
                delay = ERROR_BACKOFF_SECONDS[min(failures, len(ERROR_BACKOFF_SECONDS) - 1)]
                failures += 1
                if self._stopping:
                    return
                log.warning("scheduler step failed (%s); retrying in %.2fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
