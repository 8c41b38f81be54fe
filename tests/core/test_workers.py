"""``core.workers.Supervisor`` in this process with tiny workers (``tests/reliability/
test_workers.py`` runs the real services with ``--workers``): a worker that exits is
started again with a doubling delay up to the cap (reset after a healthy run), SIGTERM
stops every worker and the status is 0, a worker that ignores SIGTERM is killed after
the stop timeout and the status is 1, and the signal handlers are put back.

The workers signal the parent themselves when the test has seen enough, so nothing here
waits for time; the delays are shrunk to milliseconds."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from portal_pulse.core import workers
from portal_pulse.core.workers import Supervisor

EXITS = 3  # worker 0 exits this many times before it stops the parent


def restarts(caplog: pytest.LogCaptureFixture) -> list[tuple[object, ...]]:
    """(name, index, exit code, delay) of every restart the supervisor logged."""
    found: list[tuple[object, ...]] = []
    for record in caplog.records:
        if record.name == workers.__name__ and "restarting in" in record.msg:
            assert isinstance(record.args, tuple)
            name, index, code, _ran, delay = record.args
            found.append((name, index, code, delay))
    return found


def wait_for_file(directory: Path, pattern: str) -> None:
    deadline = time.monotonic() + 10
    while not list(directory.glob(pattern)):
        assert time.monotonic() < deadline, f"no {pattern} in {directory}"
        time.sleep(0.005)


def flaky_then_stop(directory: Path) -> workers.WorkerMain:
    def main(index: int) -> None:
        (directory / f"{index}-{os.getpid()}").write_text(multiprocessing.current_process().name)
        if index == 0:
            if len(list(directory.glob("0-*"))) <= EXITS:
                sys.exit(3)
            wait_for_file(directory, "1-*")  # worker 1 has reset its signal handlers
            os.kill(os.getppid(), signal.SIGTERM)  # enough restarts seen: stop everything
        signal.pause()  # until the parent's SIGTERM (the default action: exit)

    return main


@pytest.mark.parametrize(("healthy_after", "delays"), [
    (60.0, [0.01, 0.02, 0.03]),  # doubling, capped at 0.03
    (0.0, [0.01, 0.01, 0.01]),  # every run counts as healthy: no growing delay
])
def test_an_exited_worker_is_restarted_and_sigterm_stops_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    healthy_after: float, delays: list[float],
) -> None:
    monkeypatch.setattr(workers, "RESTART_DELAY_SECONDS", 0.01)
    monkeypatch.setattr(workers, "MAX_RESTART_DELAY_SECONDS", 0.03)
    monkeypatch.setattr(workers, "HEALTHY_RUN_SECONDS", healthy_after)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with caplog.at_level(logging.INFO, logger=workers.__name__):
        status = Supervisor(flaky_then_stop(tmp_path), count=2, name="unit").run()
    assert status == 0
    assert restarts(caplog) == [("unit", 0, 3, delay) for delay in delays]
    names = sorted(path.read_text() for path in tmp_path.iterdir())
    assert names == ["unit-0"] * (EXITS + 1) + ["unit-1"]
    assert {sig: signal.getsignal(sig) for sig in before} == before
    messages = [record.getMessage() for record in caplog.records]
    assert "stopping 2 units" in messages
    assert not [m for m in messages if "did not stop" in m]


def stubborn(directory: Path) -> workers.WorkerMain:
    def main(index: int) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        (directory / "ignoring").write_text("")
        os.kill(os.getppid(), signal.SIGTERM)
        while True:
            signal.pause()

    return main


def test_a_worker_that_ignores_sigterm_is_killed_and_the_status_is_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "STOP_TIMEOUT_SECONDS", 0.2)
    with caplog.at_level(logging.INFO, logger=workers.__name__):
        status = Supervisor(stubborn(tmp_path), count=1).run()
    assert status == 1
    assert (tmp_path / "ignoring").exists()
    assert "worker 0 did not stop in 0 s; killing it" in [record.getMessage() for record in caplog.records]
    assert restarts(caplog) == []
