"""The supervisor's bookkeeping on a manual clock: when a task counts as stale."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.supervise import Beat, Supervisor
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
