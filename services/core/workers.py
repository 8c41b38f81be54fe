"""``--workers N``: one service process per core, all accepting on one port.

The parent process forks N workers before any event loop, client or app exists. Each
worker builds its own app (its own Redis pool, writer, scheduler and metrics registry),
listens on the shared port with ``SO_REUSEPORT`` (the kernel spreads new connections
over the workers) and, when a metrics port is set, also on ``metrics_port + index``, so
Prometheus scrapes every worker as a target of its own and sums them: a scrape of the
shared port reaches one worker at random and shows that worker's figures only.

The parent only supervises: a worker that exits unexpectedly is started again after a
short delay (doubling up to ``MAX_RESTART_DELAY_SECONDS``, reset once a worker has run
for a minute); SIGTERM or SIGINT is passed on to every worker, which stops accepting,
finishes and commits what it acknowledged, and exits; the parent then exits with 0, or
with 1 if a worker had to be killed after ``STOP_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

#: How long a stopping worker may take before it is killed (above the runner's own
#: shutdown timeout, so a worker finishing its in-flight requests is never cut short).
STOP_TIMEOUT_SECONDS = 30.0
RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 10.0
#: A worker that ran this long before dying is restarted without the growing delay.
HEALTHY_RUN_SECONDS = 60.0

#: Runs one worker until it is told to stop; takes the worker's index (0 .. N-1).
WorkerMain = Callable[[int], None]


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    started: float
    delay: float = RESTART_DELAY_SECONDS


@dataclass
class Supervisor:
    main: WorkerMain
    count: int
    name: str = "worker"
    _stopping: bool = False
    _workers: dict[int, _Worker] = field(default_factory=dict)

    def run(self) -> int:
        """Start the workers and supervise them until a stop signal; the exit status."""
        context = multiprocessing.get_context("fork")
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self._start(context, index, RESTART_DELAY_SECONDS)
            while not self._stopping:
                self._watch(context)
            return self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self, context: multiprocessing.context.ForkContext, index: int, delay: float) -> None:
        process = context.Process(target=_worker_entry, args=(self.main, index), name=f"{self.name}-{index}")
        process.start()
        self._workers[index] = _Worker(index, process, time.monotonic(), delay)
        log.info("%s %d started (pid %s)", self.name, index, process.pid)

    def _watch(self, context: multiprocessing.context.ForkContext) -> None:
        sentinels = {worker.process.sentinel: worker for worker in self._workers.values()}
        # A short wait so a stop signal is noticed promptly (signals interrupt nothing here).
        for ready in multiprocessing.connection.wait(list(sentinels), timeout=0.2):
            if self._stopping:
                return
            assert isinstance(ready, int)  # process sentinels are file descriptors
            worker = sentinels[ready]
            worker.process.join()
            ran = time.monotonic() - worker.started
            delay = RESTART_DELAY_SECONDS if ran >= HEALTHY_RUN_SECONDS else worker.delay
            log.error("%s %d exited with %s after %.1f s; restarting in %.1f s",
                      self.name, worker.index, worker.process.exitcode, ran, delay)
            self._sleep(delay)
            if not self._stopping:
                self._start(context, worker.index, min(delay * 2, MAX_RESTART_DELAY_SECONDS))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))

    def _stop_all(self) -> int:
        log.info("stopping %d %ss", len(self._workers), self.name)
        for worker in self._workers.values():
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: the worker's graceful stop
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        status = 0
        for worker in self._workers.values():
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                log.error("%s %d did not stop in %.0f s; killing it", self.name, worker.index, STOP_TIMEOUT_SECONDS)
                worker.process.kill()
                worker.process.join()
                status = 1
        return status


def _worker_entry(main: WorkerMain, index: int) -> None:
    # The parent's handlers were inherited by the fork; the worker's runner installs its
    # own on its event loop, and until then the default action (exit) is right.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    main(index)
