"""The counter's hit writer: the core ``Batcher`` committing hits through ``HitStore``
(many concurrent hits, one round trip per shard), counting what each batch recorded.

Hits are independent (the script decides each one atomically), so concurrent batches
need no order. On a cluster each node that owns a site's slot is a lane of its own, so a
dead or frozen master delays and refuses only the hits of its own sites.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from portal_pulse.core.batch_metrics import BatchMetrics
from portal_pulse.core.batcher import Batcher
from portal_pulse.core.redis_conn import key_router
from portal_pulse.core.settings import CounterSettings
from portal_pulse.counter.hit import CommitResult, Hit
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.metrics import CounterMetrics
from portal_pulse.counter.store import HitStore

HitWriter = Batcher[Hit, CommitResult]


def hit_writer(
    client: Redis, store: HitStore, metrics: CounterMetrics, batches: BatchMetrics, settings: CounterSettings
) -> HitWriter:
    operation = batches.operation("commit")
    # The counter's own names, kept for its dashboards, get the same observations.
    operation.sizes.append(metrics.batch_size)
    operation.durations.append(metrics.commit_duration)
    operation.overloads.append(metrics.overload_refusals)

    async def commit(hits: list[Hit]) -> Sequence[CommitResult | BaseException]:
        results = await store.commit(hits)
        # Counted once per batch (a few increments, not three per hit), and even for
        # hits whose waiter gave up: they are in Redis.
        metrics.record_batch(
            (hit, result) for hit, result in zip(hits, results, strict=True) if isinstance(result, CommitResult)
        )
        return results

    node_of = key_router(client)
    writer: HitWriter = Batcher(
        commit, operation,
        max_batch=settings.batch_max_hits,
        max_pending=settings.max_pending_hits,
        in_flight=settings.commits_in_flight,
        timeout_seconds=settings.commit_timeout_seconds,
        lane_of=None if node_of is None else (lambda hit: node_of(SiteKeys(hit.site).totals)),
    )
    metrics.pending_hits.set_function(writer.pending)
    return writer
