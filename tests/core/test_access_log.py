"""The aggregated access log: a line per route, method and status, never a path."""

from __future__ import annotations

import logging

import pytest

from services.core.access_log import AccessSummary
from services.core.clock import ManualClock
from services.core.settings import ConfigError, load_settings
from services.counter.app import create_app
from tests.conftest import ClientFactory
from tests.counter.conftest import BROWSER_UA, counter_settings


def test_summary_lines_are_per_key_busiest_first_and_restart() -> None:
    summary = AccessSummary()
    for seconds in (0.001, 0.003, 0.002):
        summary.record(("/v1/hit", "POST", 204), seconds)
    summary.record(("/v1/stats", "GET", 200), 0.0005)
    lines = summary.flush()
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/hit 204: 3 requests in ")
    assert lines[0].endswith("mean 2.0ms, max 3.0ms")
    assert lines[1].startswith("GET /v1/stats 200: 1 requests in ")
    assert summary.flush() == []


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
