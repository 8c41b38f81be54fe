"""The due-time scheduler every process runs.

It sleeps until the earliest due time over every bucket's index (never longer than
``scheduler_max_sleep_seconds``, so a session created by another process is noticed in
time), then steps every bucket: it reads each bucket's due members and runs one atomic
script per bucket that has some (``ScriptRunner.run_many``: one pipeline on a single
server, concurrent calls per node on a cluster), which re-checks each session, settles
it and re-inserts its next due time. Several processes may run it against one Redis:
the script re-checks atomically, so each transition is announced exactly once, and a
dead process's due work is simply done by the others. A bucket whose shard fails is
retried with a backoff while the other buckets are stepped on time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from portal_pulse.core.clock import Clock, Sleep
from portal_pulse.core.redis_conn import STORAGE_ERRORS
from portal_pulse.session.metrics import SessionMetrics
from portal_pulse.session.store import SessionStore

log = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.01
MAX_BATCHES_PER_STEP = 100  # bounded work per step; the rest waits for the next one
ERROR_BACKOFF_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)


class Scheduler:
    def __init__(
        self,
        store: SessionStore,
        clock: Clock,
        metrics: SessionMetrics,
        max_sleep_seconds: float,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._max_sleep = max_sleep_seconds  # the batch size is the store's (session.scheduler_batch)
        self._sleep = sleep  # the wait between steps (injected by the tests)
        self._stopping = False
        #: Bucket calls that failed in the last step (a shard down): retried soon.
        self.failing = 0

    def stop(self) -> None:
        """Ask the loop to end. Checked every turn, because a cancellation that lands
        inside a Redis call may surface as a connection error instead."""
        self._stopping = True

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)

    async def run_once(self) -> int:
        """Announce every transition due now (batch by batch); the number announced.
        ``failing`` afterwards: how many bucket calls failed in this step."""
        announced = 0
        self.failing = 0
        for _ in range(MAX_BATCHES_PER_STEP):
            now_ms = self._now_ms()
            step = await self._store.announce_due(now_ms)
            self.failing = max(self.failing, len(step.failures))
            for kind, due_ms in step.events:
                self._metrics.count_transitions([kind])
                self._metrics.scheduler_lag.observe(max(0.0, (now_ms - due_ms) / 1000))
            announced += len(step.events)
            if not step.more:
                break
        return announced

    async def _sleep_seconds(self) -> float:
        next_due = await self._store.next_due_ms()
        if next_due is None:
            return self._max_sleep
        wait = (next_due - self._now_ms()) / 1000
        # Never zero: with a clock that does not move (tests) the loop must not spin.
        return min(self._max_sleep, max(MIN_SLEEP_SECONDS, wait))

    @staticmethod
    def _backoff(failures: int) -> float:
        return ERROR_BACKOFF_SECONDS[min(failures, len(ERROR_BACKOFF_SECONDS) - 1)]

    async def run_forever(self, beat: Callable[[], None] = lambda: None) -> None:
        """Step until stopped; ``beat()`` after every step that reached storage. Storage
        errors are retried here (a step where only some buckets failed retries them
        within the backoff, the others keep their due times); anything else ends the
        loop (``core.supervise`` restarts it)."""
        failures = 0
        while not self._stopping:
            try:
                await self.run_once()
                delay = await self._sleep_seconds()
                if self.failing:
                    delay = min(delay, self._backoff(failures))
                    failures += 1
                    log.warning("scheduler step: %d bucket call(s) failed; retrying them", self.failing)
                else:
                    failures = 0
                beat()
            except STORAGE_ERRORS as exc:
                delay = self._backoff(failures)
                failures += 1
                if self._stopping:
                    return
                log.warning("scheduler step failed (%s); retrying in %.2fs", type(exc).__name__, delay)
            await self._sleep(delay)
