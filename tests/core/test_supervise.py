"""The supervisor's bookkeeping on a manual clock: when a task counts as stale."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import generate_latest

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.supervise import Beat, Supervisor, backoff_seconds
from tests.conftest import T0
from tests.metric_samples import sample


async def test_stale_only_past_the_bound_and_fresh_again_after_a_beat() -> None:
    clock = ManualClock(T0)
    metrics = ServiceMetrics("test")
    supervisor = Supervisor(metrics, clock, stale_after_seconds=30)
    beats: list[Beat] = []
    done = asyncio.Event()

    async def work(beat: Beat) -> None:
        beats.append(beat)
        await done.wait()

    task = supervisor.start("worker", work)
    assert task.get_name() == "worker"  # what a task dump (asyncio debug, py-spy) shows
    await asyncio.sleep(0)  # the task runs up to its wait
    families = {f.name: f for f in metrics.registry.collect()}
    assert families["pulse_background_last_success_timestamp_seconds"].documentation == (
        "When a background task (scheduler, event bus, statistics fold) last completed a unit of work, by task.")
    assert families["pulse_background_restarts"].documentation == (
        "Background tasks restarted after an unexpected error, by task.")
    text = generate_latest(metrics.registry).decode()
    assert sample(text, "pulse_background_last_success_timestamp_seconds", task="worker") == T0
    assert sample(text, "pulse_background_restarts_total", task="worker") == 0
    clock.advance(30)
    assert supervisor.stale() == []  # exactly at the bound: not yet
    clock.advance(0.5)
    assert supervisor.stale() == ["worker"]
    beats[0]()
    assert supervisor.stale() == []
    text = generate_latest(metrics.registry).decode()
    assert sample(text, "pulse_background_last_success_timestamp_seconds", task="worker") == T0 + 30.5
    done.set()
    await task  # a clean return ends supervision: no restart
    assert sample(generate_latest(metrics.registry).decode(), "pulse_background_restarts_total", task="worker") == 0


async def test_restarts_back_off_and_start_over_after_a_unit_of_work(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(T0)  # never moves: a beat counts however little time passed
    metrics = ServiceMetrics("test")
    waits: list[float] = []
    runs = 0

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def work(beat: Beat) -> None:
        nonlocal runs
        runs += 1
        if runs in (2, 5):
            beat()  # these runs complete a unit of work before they fail
        if runs == 7:
            return  # asked to stop: supervision ends
        raise RuntimeError(f"failure {runs}")

    supervisor = Supervisor(metrics, clock, stale_after_seconds=30, sleep=sleep)
    with caplog.at_level(logging.ERROR, "portal_pulse.core.supervise"):
        await asyncio.wait_for(supervisor.start("worker", work), 1.0)
    assert waits == [0.1, 0.1, 0.2, 0.4, 0.1, 0.2]
    assert sample(generate_latest(metrics.registry).decode(), "pulse_background_restarts_total", task="worker") == 6
    assert [r.getMessage() for r in caplog.records] == [
        f"background task worker failed; restarting in {w:.1f}s" for w in waits]
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == [f"failure {n}" for n in range(1, 7)]


def test_the_backoff_doubles_up_to_ten_seconds() -> None:
    assert [backoff_seconds(n) for n in (0, 1, 2, 3, 7, 8, 9, 100)] == [0.1, 0.1, 0.2, 0.4, 6.4, 10.0, 10.0, 10.0]
