"""The ingest pipeline: named steps in order, and each drop reason counted and reported."""

from __future__ import annotations

from services.counter.hit import Outcome
from services.counter.state import PIPELINE
from tests.counter.conftest import GOOGLEBOT, Counter, CounterFactory
from tests.metric_samples import sample


async def hits_metric(counter: Counter, result: str, kind: str = "pageview") -> float:
    text = await (await counter.client.get("/metrics")).text()
    return sample(text, "pulse_ingest_hits_total", kind=kind, result=result, site="default")


def test_steps_run_in_the_documented_order(vcounter: Counter) -> None:
    names = [name for name, _ in vcounter.app[PIPELINE].steps]
    assert names == ["filter_bot", "filter_origin", "enrich_client", "enrich_visitor", "validate",
                     "enrich_dimensions"]


def test_drop_reasons_are_a_closed_set() -> None:
    assert {o.value for o in Outcome} == {"counted", "bot", "duplicate", "rate_limited", "origin"}


async def test_counted(vcounter: Counter) -> None:
    response = await vcounter.hit()
    assert response.headers["X-Pulse-Counted"] == "1"
    assert await hits_metric(vcounter, "counted") == 1
    text = await (await vcounter.client.get("/metrics")).text()
    assert sample(text, "pulse_ingest_visits_total", site="default") == 1
    assert sample(text, "pulse_ingest_pageviews_total", site="default") == 1


async def test_drop_bot(vcounter: Counter) -> None:
    response = await vcounter.hit(ua=GOOGLEBOT)
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=bot"
    assert await hits_metric(vcounter, "bot") == 1
    assert await hits_metric(vcounter, "counted") == 0


async def test_drop_duplicate(vcounter: Counter) -> None:
    await vcounter.hit(id="same", kind="download", path="/f")
    response = await vcounter.hit(id="same", kind="download", path="/f")
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=duplicate"
    assert await hits_metric(vcounter, "duplicate", kind="download") == 1


async def test_drop_rate_limited(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, max_hits_per_visitor_per_minute=1)
    await counter.hit(kind="heartbeat")
    response = await counter.hit(kind="heartbeat")
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=rate_limited"
    assert await hits_metric(counter, "rate_limited", kind="heartbeat") == 1


async def test_drop_reasons_with_the_pixel(vcounter: Counter) -> None:
    response = await vcounter.client.get("/v1/hit.gif", params={"site": "default"},
                                         headers={"User-Agent": GOOGLEBOT})
    assert response.headers["X-Pulse-Counted"] == "0; reason=bot"
