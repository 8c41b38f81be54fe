"""The aggregated access log: a line per route, method and status, never a path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.metrics_core import Metric

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.request_tally import RequestTally, summary_ctx
from portal_pulse.core.settings import ConfigError, load_settings
from portal_pulse.counter.app import create_app
from tests.conftest import ClientFactory
from tests.counter.conftest import BROWSER_UA, counter_settings


def test_access_lines_are_per_key_busiest_first_and_only_what_changed() -> None:
    tally = RequestTally("test", (0.001, 0.01))
    for seconds in (0.001, 0.003, 0.002):
        tally.observe(("/v1/hit", "POST", 204), seconds)
    tally.observe(("/v1/stats", "GET", 200), 0.0005)
    lines = tally.access_lines()
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/hit 204: 3 requests in ")
    assert lines[0].endswith("mean 2.0ms, max 3.0ms")
    assert lines[1].startswith("GET /v1/stats 200: 1 requests in ")
    assert tally.access_lines() == []
    tally.observe(("/v1/stats", "GET", 200), 0.004)
    assert [line.split(": ")[0] for line in tally.access_lines()] == ["GET /v1/stats 200"]


def test_access_lines_word_for_word_per_interval() -> None:
    """Counts, elapsed time, mean and max of the interval only; busiest (by requests,
    not by time spent) first."""
    now = [100.0]
    tally = RequestTally("test", (0.001, 0.01), monotonic=lambda: now[0])
    tally.observe(("/v1/hit", "POST", 204), 0.5)
    tally.observe(("/v1/hit", "POST", 204), 0.25)
    for _ in range(3):
        tally.observe(("/v1/stats", "GET", 200), 0.001)
    now[0] = 102.5
    assert tally.access_lines() == [
        "GET /v1/stats 200: 3 requests in 2.5s, mean 1.0ms, max 1.0ms",
        "POST /v1/hit 204: 2 requests in 2.5s, mean 375.0ms, max 500.0ms",
    ]
    tally.observe(("/v1/hit", "POST", 204), 0.125)
    now[0] = 112.5
    assert tally.access_lines() == ["POST /v1/hit 204: 1 requests in 10.0s, mean 125.0ms, max 125.0ms"]


def test_the_histogram_is_what_prometheus_client_would_export() -> None:
    ours = RequestTally("svc", (0.001, 0.01))
    registry = CollectorRegistry()
    registry.register(ours)
    theirs = Histogram("pulse_http_request_duration_seconds", "x", ["service", "route", "method", "status"],
                       buckets=(0.001, 0.01), registry=CollectorRegistry())
    for seconds in (0.0005, 0.001, 0.002, 0.5, 0.01):
        ours.observe(("/v1/hit", "POST", 204), seconds)
        theirs.labels("svc", "/v1/hit", "POST", "204").observe(seconds)

    def samples(families: Iterable[Metric]) -> list[tuple[str, list[tuple[str, str]], float]]:
        return sorted((s.name, sorted(s.labels.items()), s.value) for f in families for s in f.samples
                      if not s.name.endswith("_created"))

    assert samples(registry.collect()) == samples(theirs.collect())


def test_what_the_tally_describes_is_what_it_collects() -> None:
    # prometheus-client reads describe() when the tally is registered, to refuse a second
    # collector of the same name: it must announce the family it then exports
    tally = RequestTally("svc", (0.001,))
    tally.observe(("/v1/hit", "POST", 204), 0.0005)
    (described,) = tally.describe()
    (collected,) = tally.collect()
    assert described.samples == []
    assert (described.name, described.type, described.documentation) == (
        collected.name, collected.type, collected.documentation)
    assert described.documentation.startswith("HTTP request duration")
    assert {s.name for s in collected.samples} >= {"pulse_http_request_duration_seconds_bucket"}
    assert [sorted(s.labels) for s in collected.samples if s.name.endswith("_count")] == [
        ["method", "route", "service", "status"]]
    assert described._labelnames == ("service", "route", "method", "status")  # no public view of a family's labels


async def test_the_counter_logs_a_summary_with_route_templates(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(create_app(counter_settings(valkey_url), clock))
    for visitor in ("a1", "a2", "a3"):
        body = {"site": "default", "kind": "pageview", "path": "/tin-tuc/bai-viet-123.html", "visitor": visitor}
        assert (await client.post("/v1/hit", json=body, headers={"User-Agent": BROWSER_UA})).status == 204
    assert (await client.get("/v1/stats", params={"site": "nope"})).status == 404
    with caplog.at_level(logging.INFO, logger="portal_pulse.access"):
        await client.close()  # the shutdown writes the last interval
    lines = [r.getMessage() for r in caplog.records if r.name == "portal_pulse.access"]
    assert any(line.startswith("access POST /v1/hit 204: 3 requests in ") for line in lines), lines
    assert any(line.startswith("access GET /v1/stats 404: 1 requests in ") for line in lines), lines
    assert not any("bai-viet" in line for line in lines)


def test_access_log_mode_is_checked() -> None:
    assert load_settings(env={}).access_log == "summary"
    assert load_settings(env={"PULSE_ACCESS_LOG": "requests"}).access_log == "requests"
    with pytest.raises(ConfigError, match="access_log: expected one of summary, requests, off"):
        load_settings(env={"PULSE_ACCESS_LOG": "loud"})


async def test_the_summary_is_written_every_interval_and_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    tally = RequestTally("test", (0.001, 0.01))
    waits: list[float] = []
    interval_passed = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await interval_passed.wait()
        interval_passed.clear()

    caplog.set_level(logging.INFO, logger="portal_pulse.access")
    ctx = summary_ctx(tally, 60.0, sleep)(web.Application())
    await anext(ctx)
    tally.observe(("/v1/hit", "POST", 204), 0.002)
    interval_passed.set()
    for _ in range(5):
        await asyncio.sleep(0)  # the summary task runs its interval's write
    written = [r.getMessage() for r in caplog.records if r.name == "portal_pulse.access"]
    assert len(written) == 1 and written[0].startswith("access POST /v1/hit 204: 1 requests")
    tally.observe(("/v1/stats", "GET", 200), 0.001)
    with pytest.raises(StopAsyncIteration):
        await anext(ctx)  # shutdown: the rest is written
    written = [r.getMessage() for r in caplog.records if r.name == "portal_pulse.access"]
    assert len(written) == 2 and written[1].startswith("access GET /v1/stats 200: 1 requests")
    assert waits == [60.0, 60.0]
