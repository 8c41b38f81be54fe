"""The counter's own metrics, on the app's registry, named ``pulse_ingest_*`` (never
"counter": promtool reads that word as the metric type). Names are a contract with the
dashboards and alerts in ``deploy/``. Labels come from fixed sets
(configured sites, kinds, results, audiences) and never hold paths, visitors or IPs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram
from redis.asyncio import Redis

from portal_pulse.core.clock import Clock
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.redis_conn import STORAGE_ERRORS
from portal_pulse.core.settings import Settings
from portal_pulse.counter.hit import KINDS, RESULTS, UNKNOWN_LABEL, CommitResult, Hit, Kind, Outcome
from portal_pulse.counter.keys import AUDIENCES, SiteKeys

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class CounterMetrics:
    def __init__(self, service: ServiceMetrics, settings: Settings) -> None:
        registry = service.registry
        self.service = service
        self.sites = frozenset(settings.site_map)
        self.hits = Counter(
            "pulse_ingest_hits_total",
            "Hits received, by site, kind and result (counted, bot, duplicate, rate_limited, origin, rejected).",
            ["site", "kind", "result"],
            registry=registry,
        )
        self.visits = Counter("pulse_ingest_visits_total", "Visits counted by this process.", ["site"],
                              registry=registry)
        self.pageviews = Counter("pulse_ingest_pageviews_total", "Pageviews counted by this process.", ["site"],
                                 registry=registry)
        self.online = Gauge("pulse_ingest_online", "Visitors online now (read from Redis at scrape time).",
                            ["site", "audience"], registry=registry)
        self.batch_size = Histogram("pulse_ingest_commit_batch_size", "Hits per group commit.",
                                    buckets=BATCH_BUCKETS, registry=registry)
        self.commit_duration = Histogram("pulse_ingest_commit_duration_seconds",
                                         "Duration of one group commit (one Redis round trip).",
                                         buckets=COMMIT_BUCKETS, registry=registry)
        self.pending_hits = Gauge("pulse_ingest_pending_hits", "Hits waiting for the next group commit.",
                                  registry=registry)
        self.overload_refusals = Counter(
            "pulse_ingest_overload_refusals_total",
            "Hits refused with 503 at once because the commit queue was full (storage stalled).",
            registry=registry,
        )
        self._record_children: dict[tuple[str, Kind, CommitResult], tuple[Counter, ...]] = {}
        for site in sorted(self.sites):
            self.visits.labels(site)
            self.pageviews.labels(site)
            for kind in sorted(KINDS):
                for result in RESULTS:
                    self.hits.labels(site, kind, result)

    def overloaded(self) -> None:
        self.overload_refusals.inc()

    def redis_errors(self, operation: str) -> None:
        self.service.redis_errors.labels(self.service.service, operation).inc()

    @contextmanager
    def counting_redis_errors(self, operation: str) -> Iterator[None]:
        """Count a failed Redis read under ``operation`` and let it become the 503."""
        try:
            yield
        except STORAGE_ERRORS:
            self.redis_errors(operation)
            raise

    def record_batch(self, recorded: Iterable[tuple[Hit, CommitResult]]) -> None:
        """Count a commit's recorded hits: one increment per counter and label set."""
        tally: dict[tuple[str, Kind, CommitResult], int] = {}
        for hit, result in recorded:
            key = (hit.site, hit.kind, result)
            tally[key] = tally.get(key, 0) + 1
        for key, count in tally.items():
            children = self._record_children.get(key)
            if children is None:
                children = self._record_children[key] = self._children_for(*key)
            for child in children:
                child.inc(count)

    def dropped(self, site: str, kind: Kind, result: CommitResult) -> None:
        """Count a hit the pipeline dropped before the write (e.g. ``origin``)."""
        for child in self._children_for(site, kind, result):
            child.inc()

    def _children_for(self, site: str, kind: Kind, result: CommitResult) -> tuple[Counter, ...]:
        """The counters one hit with this (site, kind, result) increments (labels resolved once)."""
        children = [self.hits.labels(site, kind.value, result.outcome.value)]
        if result.outcome is Outcome.COUNTED:
            if kind is Kind.PAGEVIEW:
                children.append(self.pageviews.labels(site))
            if result.new_visit:
                children.append(self.visits.labels(site))
        return tuple(children)

    def rejected(self, site: str | None, kind: str | None) -> None:
        site_label = site if site in self.sites else UNKNOWN_LABEL
        kind_label = kind if kind in KINDS else UNKNOWN_LABEL
        self.hits.labels(site_label, kind_label, "rejected").inc()


def online_refresher(
    metrics: CounterMetrics, client: Callable[[], Redis], clock: Clock, window_seconds: int
) -> Callable[[], Awaitable[None]]:
    """An async step for ``ServiceMetrics.add_refresher``: ZCOUNT per site and audience."""

    async def refresh() -> None:
        sites = sorted(metrics.sites)
        cutoff = f"({int((clock.now() - window_seconds) * 1000)}"
        try:
            async with client().pipeline(transaction=False) as pipe:
                for site in sites:
                    for audience in AUDIENCES:
                        pipe.zcount(SiteKeys(site).online(audience), cutoff, "+inf")
                counts = await pipe.execute()
        except Exception:
            metrics.redis_errors("online")
            raise
        values = iter(counts)
        for site in sites:
            for audience in AUDIENCES:
                metrics.online.labels(site, audience).set(int(next(values)))

    return refresh
