"""Counter metrics on the app's own registry, with the names dashboards rely on."""

from __future__ import annotations

import asyncio

from tests.counter.conftest import GOOGLEBOT, Counter
from tests.metric_samples import sample


async def scrape(counter: Counter) -> str:
    response = await counter.client.get("/metrics")
    assert response.status == 200
    return await response.text()


async def test_metric_names_are_present(vcounter: Counter) -> None:
    await vcounter.hit()
    text = await scrape(vcounter)
    for name in (
        "pulse_ingest_hits_total", "pulse_ingest_visits_total", "pulse_ingest_pageviews_total",
        "pulse_ingest_online", "pulse_ingest_commit_batch_size_bucket",
        "pulse_ingest_commit_duration_seconds_bucket", "pulse_ingest_pending_hits",
        "pulse_http_request_duration_seconds_bucket", "pulse_redis_up", "pulse_build_info",
    ):
        assert f"\n{name}" in text, name
    assert 'pulse_build_info{python=' in text and 'service="counter"' in text


async def test_online_gauge_is_read_from_redis_at_scrape_time(vcounter: Counter) -> None:
    await vcounter.hit(visitor="m", member=True)
    await vcounter.hit(visitor="g")
    await vcounter.hit(visitor="b", ua=GOOGLEBOT)
    text = await scrape(vcounter)
    assert sample(text, "pulse_ingest_online", site="default", audience="members") == 1
    assert sample(text, "pulse_ingest_online", site="default", audience="guests") == 1
    assert sample(text, "pulse_ingest_online", site="default", audience="bots") == 1
    assert sample(text, "pulse_redis_up", service="counter") == 1
    vcounter.clock.advance(300)
    text = await scrape(vcounter)
    assert sample(text, "pulse_ingest_online", site="default", audience="guests") == 0


async def test_commit_histograms_observe_batches(vcounter: Counter) -> None:
    await asyncio.gather(*(vcounter.hit(visitor=f"v{i}") for i in range(20)))
    text = await scrape(vcounter)
    assert sample(text, "pulse_ingest_commit_batch_size_sum") == 20
    assert sample(text, "pulse_ingest_commit_duration_seconds_count") >= 1
    assert sample(text, "pulse_ingest_pending_hits") == 0


async def test_labels_hold_no_paths_or_visitors(vcounter: Counter) -> None:
    await vcounter.hit(visitor="visitor-label-probe", path="/path-label-probe")
    text = await scrape(vcounter)
    assert "label-probe" not in text
    assert 'route="/v1/hit"' in text
