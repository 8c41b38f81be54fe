"""The metrics of every ``Batcher``, labelled by operation (``commit`` of hits, ``read``, ``touch``):
batch size, batch duration, work waiting, refusals because the queue was full or the
breaker was open, and how many breakers are open. Created once per app registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from portal_pulse.core.metrics import ServiceMetrics

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class OperationMetrics:
    """One operation's children, resolved once. Extra histograms and counters (a
    service's older, unlabelled names kept for its dashboards) are fed the same values."""

    def __init__(self, families: BatchMetrics, operation: str) -> None:
        self.operation = operation
        self.sizes: list[Histogram] = [families.size.labels(operation)]
        self.durations: list[Histogram] = [families.duration.labels(operation)]
        self.overloads: list[Counter] = [families.overload.labels(operation)]
        self._pending = families.pending.labels(operation)
        self._open = families.breakers_open.labels(operation)
        self._refused = families.breaker_refusals.labels(operation)
        self._errors = families.service.redis_errors.labels(families.service.service, operation)

    def observe(self, size: int, seconds: float) -> None:
        for histogram in self.sizes:
            histogram.observe(size)
        for histogram in self.durations:
            histogram.observe(seconds)

    def overloaded(self) -> None:
        for counter in self.overloads:
            counter.inc()

    def refused(self) -> None:
        self._refused.inc()

    def failed(self) -> None:
        self._errors.inc()

    def watch(self, pending: Callable[[], int], breakers_open: Callable[[], int]) -> None:
        """Read at scrape time: no gauge update per call."""
        self._pending.set_function(pending)
        self._open.set_function(breakers_open)


class BatchMetrics:
    def __init__(self, service: ServiceMetrics) -> None:
        registry = service.registry
        self.service = service
        self.size = Histogram("pulse_batch_size", "Calls per storage batch (one round trip per shard).",
                              ["operation"], buckets=BATCH_BUCKETS, registry=registry)
        self.duration = Histogram("pulse_batch_duration_seconds", "Duration of one storage batch.",
                                  ["operation"], buckets=DURATION_BUCKETS, registry=registry)
        self.pending = Gauge("pulse_batch_pending", "Calls waiting for their storage batch.",
                             ["operation"], registry=registry)
        self.overload = Counter(
            "pulse_batch_overload_refusals_total",
            "Calls refused with 503 at once because the bounded batch queue was full.",
            ["operation"], registry=registry,
        )
        self.breaker_refusals = Counter(
            "pulse_batch_breaker_refusals_total",
            "Calls refused with 503 at once because their storage path's circuit breaker was open.",
            ["operation"], registry=registry,
        )
        self.breakers_open = Gauge(
            "pulse_batch_breakers_open",
            "Storage paths (the server, or cluster nodes) whose circuit breaker is open or probing.",
            ["operation"], registry=registry,
        )

    def operation(self, name: str) -> OperationMetrics:
        return OperationMetrics(self, name)
