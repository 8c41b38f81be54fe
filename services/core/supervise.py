"""Supervised background work: a long-running coroutine that cannot die quietly.

``Supervisor.start(name, run)`` runs ``run(beat)`` as a task. The coroutine calls
``beat()`` after each unit of work that succeeded. When it raises anything but a
cancellation, the supervisor logs it with ``log.exception``, counts the restart and
runs it again after a bounded exponential backoff (reset by the next success). Each
task exports the time of its last success
(``pulse_background_last_success_timestamp_seconds{task}``), and ``stale()`` names the
tasks whose last success is older than the stale bound, for ``/readyz`` and alerts.
Time comes from the service's clock, so tests move it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from portal_pulse.core.clock import Clock, Sleep
from portal_pulse.core.metrics import ServiceMetrics

log = logging.getLogger(__name__)

Beat = Callable[[], None]
Run = Callable[[Beat], Awaitable[None]]

FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 10.0


def backoff_seconds(failures: int) -> float:
    """Delay before restart number ``failures`` (1, 2, ...): doubling from 0.1 s, at most 10 s."""
    return float(min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** min(max(failures - 1, 0), 16)))


@dataclass
class _Task:
    name: str
    last_success: float
    beats: int = 0  # units of work completed: a restart after one starts the backoff over
    task: asyncio.Task[None] | None = None


class Supervisor:
    def __init__(
        self,
        metrics: ServiceMetrics,
        clock: Clock,
        stale_after_seconds: float,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep  # the wait before a restart (injected by the tests)
        self._stale_after = stale_after_seconds
        self._tasks: dict[str, _Task] = {}
        self._last_success = Gauge(
            "pulse_background_last_success_timestamp_seconds",
            "When a background task (scheduler, event bus, statistics fold) last completed a unit of work, by task.",
            ["task"], registry=metrics.registry,
        )
        self._restarts = Counter(
            "pulse_background_restarts_total",
            "Background tasks restarted after an unexpected error, by task.",
            ["task"], registry=metrics.registry,
        )

    def start(self, name: str, run: Run) -> asyncio.Task[None]:
        """Run ``run(beat)`` under supervision until it returns or the task is cancelled.
        Starting counts as a success, so a task is stale only once it has gone
        ``stale_after_seconds`` without one."""
        entry = self._tasks[name] = _Task(name, self._clock.now())
        self._last_success.labels(name).set(entry.last_success)
        self._restarts.labels(name)
        entry.task = asyncio.create_task(self._supervise(entry, run), name=name)
        return entry.task

    def _beat_for(self, entry: _Task) -> Beat:
        gauge = self._last_success.labels(entry.name)

        def beat() -> None:
            entry.beats += 1
            entry.last_success = self._clock.now()
            gauge.set(entry.last_success)

        return beat

    async def _supervise(self, entry: _Task, run: Run) -> None:
        beat = self._beat_for(entry)
        failures = 0
        while True:
            before = entry.beats
            try:
                await run(beat)
                return  # a clean return: the task was asked to stop
            except Exception:
                failures = 1 if entry.beats != before else failures + 1
                delay = backoff_seconds(failures)
                self._restarts.labels(entry.name).inc()
                log.exception("background task %s failed; restarting in %.1fs", entry.name, delay)
                await self._sleep(delay)

    def stale(self) -> list[str]:
        """Names of the tasks whose last success is older than the stale bound."""
        now = self._clock.now()
        return sorted(t.name for t in self._tasks.values() if now - t.last_success > self._stale_after)


@contextlib.asynccontextmanager
async def beating_while(healthy: Callable[[], bool], beat: Beat, every_seconds: float) -> AsyncIterator[None]:
    """Beat every ``every_seconds`` while ``healthy()`` holds, for work (a subscription)
    whose success is a state rather than a loop turn."""

    async def ticker() -> None:
        while True:
            if healthy():
                beat()
            await asyncio.sleep(every_seconds)

    task = asyncio.create_task(ticker())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
