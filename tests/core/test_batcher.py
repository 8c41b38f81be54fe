"""The batcher's own logic with a flush function of the test's (no storage): batching,
the bounded queue, the timeout, the circuit breaker and its probe, lanes. Storage-backed
behaviour (a frozen Valkey, a cluster) is in test_batcher_storage and the cluster tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest
from prometheus_client import generate_latest

from portal_pulse.core.batch_metrics import BatchMetrics
from portal_pulse.core.batcher import Batcher
from portal_pulse.core.breaker import BreakerState, CircuitBreaker
from portal_pulse.core.errors import StorageUnavailable
from portal_pulse.core.metrics import ServiceMetrics
from tests.metric_samples import sample


class Storage:
    """Doubles each item; can be made to fail or to hang (per lane key: item // 100)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing: set[int] = set()
        self.hanging: set[int] = set()
        self.release = asyncio.Event()

    async def flush(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        lane = items[0] // 100
        if lane in self.hanging:
            await self.release.wait()
        if lane in self.failing:
            raise ConnectionError("refused")
        return [item * 2 for item in items]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def batcher(storage: Storage, clock: Clock, lanes: bool = False, metrics: ServiceMetrics | None = None,
            **bounds: float) -> Batcher[int, int]:
    options = {"max_batch": 50, "max_pending": 1000, "in_flight": 2, "timeout_seconds": 0.2, **bounds}
    return Batcher(
        storage.flush, BatchMetrics(metrics or ServiceMetrics("test")).operation("op"),
        max_batch=int(options["max_batch"]), max_pending=int(options["max_pending"]),
        in_flight=int(options["in_flight"]), timeout_seconds=options["timeout_seconds"],
        open_seconds=1.0, lane_of=(lambda item: item // 100) if lanes else None, monotonic=clock,
    )


async def test_concurrent_items_share_batches_and_get_their_own_results() -> None:
    storage = Storage()
    results = await asyncio.gather(*(batcher(storage, Clock()).submit(i) for i in range(1)))
    assert results == [0]
    one = batcher(storage, Clock())
    results = await asyncio.gather(*(one.submit(i) for i in range(120)))
    assert results == [i * 2 for i in range(120)]
    assert len(storage.batches) - 1 <= 4  # 120 items, at most 50 a batch
    assert max(len(batch) for batch in storage.batches) == 50


async def test_beyond_the_bounded_queue_work_is_refused_at_once() -> None:
    storage = Storage()
    storage.hanging.add(0)
    one = batcher(storage, Clock(), max_batch=1, max_pending=3, in_flight=1, timeout_seconds=5)
    tasks = [asyncio.create_task(one.submit(0))]
    await asyncio.sleep(0.01)  # taken by a batch that hangs
    tasks += [asyncio.create_task(one.submit(i)) for i in range(1, 10)]
    await asyncio.sleep(0.01)
    refused = [t for t in tasks if t.done()]
    assert len(refused) == 10 - 1 - 3  # one in flight, three queued
    assert all(isinstance(t.exception(), StorageUnavailable) for t in refused)
    assert {getattr(t.exception(), "message", None) for t in refused} == {
        "the service is waiting for storage; retry shortly"}
    storage.release.set()
    assert await asyncio.gather(*(t for t in tasks if t not in refused)) == [0, 2, 4, 6]


async def test_a_hanging_batch_times_out_opens_the_breaker_and_fails_what_queued() -> None:
    storage, clock = Storage(), Clock()
    storage.hanging.add(0)
    one = batcher(storage, clock, max_batch=5, in_flight=1)
    tasks = [asyncio.create_task(one.submit(i)) for i in range(20)]  # 5 in flight, 15 queued
    done, _ = await asyncio.wait(tasks, timeout=1.0)
    assert len(done) == 20  # the queued ones did not wait for a batch of their own
    assert all(isinstance(t.exception(), StorageUnavailable) for t in tasks)
    messages = [getattr(t.exception(), "message", None) for t in tasks]
    assert messages == ["storage is not answering; retry shortly"] * 5 + ["storage is failing; retry shortly"] * 15
    assert one.pending() == 0
    assert len(storage.batches) == 1
    assert one.refusing()
    with pytest.raises(StorageUnavailable):  # refused at once, nothing sent
        await one.submit(1)
    assert len(storage.batches) == 1


async def tripped(storage: Storage, clock: Clock) -> Batcher[int, int]:
    """A batcher whose one batch failed (its breaker open); storage works again."""
    storage.failing.add(0)
    one = batcher(storage, clock)
    with pytest.raises(StorageUnavailable):
        await one.submit(1)
    storage.failing.clear()
    return one


async def test_after_the_open_period_a_probe_goes_alone_and_closes_the_breaker() -> None:
    storage, clock = Storage(), Clock()
    one = await tripped(storage, clock)
    clock.now = 0.99
    with pytest.raises(StorageUnavailable):
        await one.submit(2)
    clock.now = 1.0
    storage.hanging.add(0)  # the probe is slow: what comes meanwhile is refused at once
    probe = asyncio.create_task(one.submit(3))
    await asyncio.sleep(0.01)
    with pytest.raises(StorageUnavailable):
        await one.submit(4)
    assert storage.batches[-1] == [3] and one.refusing()
    storage.release.set()
    assert await probe == 6
    assert not one.refusing()
    assert await asyncio.gather(*(one.submit(i) for i in range(5, 8))) == [10, 12, 14]


async def test_a_ping_closes_a_breaker_past_its_open_period() -> None:
    storage, clock = Storage(), Clock()
    one = await tripped(storage, clock)
    assert one.refusing(pinged=True)  # within the open period a PING changes nothing
    clock.now = 1.0
    assert not one.refusing(pinged=True)
    assert await one.submit(2) == 4


async def test_without_a_ping_the_breaker_stays_open_past_its_open_period() -> None:
    storage, clock = Storage(), Clock()
    one = await tripped(storage, clock)
    clock.now = 1.0
    assert one.refusing()  # only a PING (or a probe) closes it
    assert not one.refusing(pinged=True)


async def test_a_failing_probe_opens_the_breaker_again() -> None:
    storage, clock = Storage(), Clock()
    storage.failing.add(0)
    one = batcher(storage, clock)
    for now in (0.0, 1.0):
        clock.now = now
        with pytest.raises(StorageUnavailable):
            await one.submit(1)
    assert one.refusing()
    clock.now = 1.5
    with pytest.raises(StorageUnavailable):
        await one.submit(1)
    assert len(storage.batches) == 2


async def test_a_failing_lane_fails_only_its_own_items() -> None:
    storage, clock = Storage(), Clock()
    storage.hanging.add(1)
    one = batcher(storage, clock, lanes=True, in_flight=1, timeout_seconds=0.3)
    slow = [asyncio.create_task(one.submit(100 + i)) for i in range(5)]
    await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    fast = await asyncio.gather(*(one.submit(i) for i in range(30)))
    assert fast == [i * 2 for i in range(30)]
    assert asyncio.get_running_loop().time() - started < 0.1  # not behind the hanging lane
    await asyncio.wait(slow)
    assert all(isinstance(t.exception(), StorageUnavailable) for t in slow)
    assert not one.refusing()  # a lane never makes the whole service unready


async def test_a_failed_lane_refuses_its_next_item_at_once_and_the_others_go_through() -> None:
    storage, clock = Storage(), Clock()
    storage.failing.add(1)
    metrics = ServiceMetrics("test")
    one = batcher(storage, clock, lanes=True, metrics=metrics)
    with pytest.raises(StorageUnavailable):
        await one.submit(100)
    storage.failing.clear()
    with pytest.raises(StorageUnavailable, match=r"^storage is failing; retry shortly$"):
        await one.submit(101)  # the same lane: its breaker is open, nothing sent
    assert storage.batches == [[100]]
    assert sample(generate_latest(metrics.registry).decode(), "pulse_batch_breakers_open", operation="op") == 1
    assert await one.submit(5) == 10
    clock.now = 1.0
    assert await one.submit(102) == 204  # the probe of lane 1 closes its breaker


async def test_a_storage_refusal_keeps_its_message_and_a_bug_is_raised_as_it_is() -> None:
    behind = StorageUnavailable("0 of 1 replicas confirmed the write; retry shortly")

    async def flush(items: list[int]) -> Sequence[int | BaseException]:
        if items[0] < 0:
            raise RuntimeError("a bug")
        return [behind if item == 1 else item for item in items]

    one: Batcher[int, int] = Batcher(flush, BatchMetrics(ServiceMetrics("test")).operation("op"), max_batch=50,
                                     max_pending=10, in_flight=1, timeout_seconds=1, monotonic=Clock())
    results = await asyncio.gather(one.submit(1), one.submit(2), return_exceptions=True)
    assert isinstance(results[0], StorageUnavailable) and results[0].message == behind.message
    assert results[1] == 2
    with pytest.raises(RuntimeError, match="a bug"):
        await one.submit(-1)
    assert not one.refusing()  # storage answered: a bug does not open the breaker
    assert await one.submit(3) == 3


async def test_close_sends_everything_queued() -> None:
    storage = Storage()
    one = batcher(storage, Clock())
    tasks = [asyncio.create_task(one.submit(i)) for i in range(200)]
    await asyncio.sleep(0)
    await one.close()
    assert [t.result() for t in tasks] == [i * 2 for i in range(200)]
    with pytest.raises(StorageUnavailable, match="^the service is shutting down; retry shortly$"):
        await one.submit(1)


def state_of(breaker: CircuitBreaker) -> str:
    return breaker.state.value


def test_the_breaker_states() -> None:
    clock = Clock()
    breaker = CircuitBreaker(0.5, clock)
    assert breaker.allow()
    assert state_of(breaker) == "closed"
    breaker.failed()
    assert not breaker.allow() and breaker.refusing()
    clock.now = 0.5
    assert breaker.allow()
    assert state_of(breaker) == BreakerState.PROBING.value and breaker.refusing()
    assert not breaker.allow()  # one probe at a time
    breaker.succeeded()
    assert state_of(breaker) == "closed" and not breaker.is_open


def test_the_batch_families_by_name_help_labels_and_buckets() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    service = ServiceMetrics("test")
    op = BatchMetrics(service).operation("commit")
    assert op.operation == "commit"
    op.observe(3, 0.002)
    op.overloaded()
    op.refused()
    op.failed()
    op.watch(lambda: 7, lambda: 2)
    text = generate_latest(service.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)
                if f.name.startswith("pulse_batch") and not f.name.endswith("_created")}
    assert {name: (f.type, f.documentation) for name, f in families.items()} == {
        "pulse_batch_size": ("histogram", "Calls per storage batch (one round trip per shard)."),
        "pulse_batch_duration_seconds": ("histogram", "Duration of one storage batch."),
        "pulse_batch_pending": ("gauge", "Calls waiting for their storage batch."),
        "pulse_batch_overload_refusals": (
            "counter", "Calls refused with 503 at once because the bounded batch queue was full."),
        "pulse_batch_breaker_refusals": (
            "counter", "Calls refused with 503 at once because their storage path's circuit breaker was open."),
        "pulse_batch_breakers_open": (
            "gauge", "Storage paths (the server, or cluster nodes) whose circuit breaker is open or probing."),
    }
    bounds = {name: [s.labels["le"] for s in f.samples if s.name.endswith("_bucket")]
              for name, f in families.items() if f.type == "histogram"}
    assert bounds == {"pulse_batch_size": [str(float(b)) for b in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000,
                                                                    2000, 5000)] + ["+Inf"],
                      "pulse_batch_duration_seconds": [str(b) for b in (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)]
                      + ["+Inf"]}
    commit = {"operation": "commit"}
    assert sample(text, "pulse_batch_size_sum", **commit) == 3
    assert sample(text, "pulse_batch_duration_seconds_sum", **commit) == 0.002
    assert sample(text, "pulse_batch_pending", **commit) == 7
    assert sample(text, "pulse_batch_breakers_open", **commit) == 2
    assert sample(text, "pulse_batch_overload_refusals_total", **commit) == 1
    assert sample(text, "pulse_batch_breaker_refusals_total", **commit) == 1
    assert sample(text, "pulse_redis_errors_total", service="test", operation="commit") == 1


async def test_a_failed_batch_is_logged_with_its_size_and_cause(caplog: pytest.LogCaptureFixture) -> None:
    async def flush(items: list[int]) -> Sequence[int | BaseException]:
        if items[0] < 0:
            raise RuntimeError("a bug")
        raise ConnectionError("refused")

    one: Batcher[int, int] = Batcher(flush, BatchMetrics(ServiceMetrics("test")).operation("op"), max_batch=50,
                                     max_pending=10, in_flight=1, timeout_seconds=1, monotonic=Clock())
    with caplog.at_level(logging.WARNING, "portal_pulse.core.batcher"):
        await asyncio.gather(one.submit(-1), one.submit(-2), return_exceptions=True)
        await asyncio.gather(one.submit(1), one.submit(2), one.submit(3), return_exceptions=True)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "a batch of 2 failed unexpectedly"),
        ("WARNING", "a batch of 3 failed: ConnectionError"),
    ]
    exc_info = caplog.records[0].exc_info
    assert exc_info is not None and str(exc_info[1]) == "a bug"  # the traceback of the bug goes with it


async def test_a_batch_whose_every_call_failed_opens_the_breaker_and_one_that_partly_failed_does_not() -> None:
    async def flush(items: list[int]) -> Sequence[int | BaseException]:
        flushed.append(items)
        return [ConnectionError("refused") if item % 2 else item for item in items]

    flushed: list[list[int]] = []
    one: Batcher[int, int] = Batcher(flush, BatchMetrics(ServiceMetrics("test")).operation("op"), max_batch=50,
                                     max_pending=10, in_flight=1, timeout_seconds=1, monotonic=Clock())
    partly = await asyncio.gather(one.submit(1), one.submit(2), return_exceptions=True)
    assert isinstance(partly[0], StorageUnavailable) and partly[1] == 2
    assert not one.refusing()
    every = await asyncio.gather(one.submit(3), one.submit(5), return_exceptions=True)
    assert all(isinstance(result, StorageUnavailable) for result in every)
    assert one.refusing()
    with pytest.raises(StorageUnavailable, match="^storage is failing; retry shortly$"):
        await one.submit(4)  # refused at once: not sent
    assert flushed == [[1, 2], [3, 5]]


async def test_a_batch_s_duration_is_the_time_it_took() -> None:
    release = asyncio.Event()

    async def flush(items: list[int]) -> Sequence[int | BaseException]:
        await release.wait()
        return items

    service = ServiceMetrics("test")
    one: Batcher[int, int] = Batcher(flush, BatchMetrics(service).operation("op"), max_batch=50,
                                     max_pending=10, in_flight=1, timeout_seconds=5, monotonic=Clock())
    loop = asyncio.get_running_loop()
    started = loop.time()
    call = asyncio.create_task(one.submit(1))
    for _ in range(3):  # the batch task starts and waits in the flush
        await asyncio.sleep(0)
    release.set()
    assert await call == 1
    took = loop.time() - started
    observed = sample(generate_latest(service.registry).decode(), "pulse_batch_duration_seconds_sum", operation="op")
    assert 0 < observed <= took  # measured from the batch's start to its answer, within the caller's wait
