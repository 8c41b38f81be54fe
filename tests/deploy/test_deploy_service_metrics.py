"""promtool check metrics on both services' real /metrics output: the exposition
follows Prometheus' conventions (names, units, _total, HELP) with nothing to report."""

from __future__ import annotations

import subprocess

import aiohttp
import pytest

from portal_pulse.core.settings import Settings
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.session.app import create_app as create_session
from tests.conftest import ClientFactory, make_settings
from tests.deploy.artefacts import tool
from tests.deploy.services_under_test import exercise_counter, exercise_session


def promtool_findings(exposition: str) -> list[str]:
    result = subprocess.run([tool("promtool", "/usr/bin/promtool"), "check", "metrics"],
                            input=exposition, capture_output=True, text=True, timeout=30)
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 or findings, f"promtool failed silently (exit {result.returncode})"
    return findings


@pytest.fixture
def settings(valkey_url: str) -> Settings:
    return make_settings(valkey_url)


async def test_counter_metrics_pass_promtool(settings: Settings, make_client: ClientFactory) -> None:
    client = await make_client(create_counter(settings))
    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        await exercise_counter(http, base)
    response = await client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    for family in ("pulse_ingest_hits_total", "pulse_ingest_visits_total", "pulse_ingest_pageviews_total",
                   "pulse_ingest_online", "pulse_ingest_commit_batch_size_bucket",
                   "pulse_ingest_commit_duration_seconds_bucket", "pulse_ingest_pending_hits",
                   "pulse_http_request_duration_seconds_bucket", "pulse_redis_up", "pulse_build_info",
                   "process_cpu_seconds_total", "python_info"):
        assert f"\n{family}" in text, family
    assert promtool_findings(text) == []


async def test_session_metrics_pass_promtool(settings: Settings, make_client: ClientFactory) -> None:
    client = await make_client(create_session(settings))
    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        await exercise_session(http, base)
    response = await client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    for family in ("pulse_session_transitions_total", "pulse_session_live", "pulse_session_keepalives_total",
                   "pulse_session_activity_total", "pulse_session_event_streams",
                   "pulse_session_scheduler_lag_seconds_bucket", "pulse_http_request_duration_seconds_bucket",
                   "pulse_redis_up", "pulse_build_info"):
        assert f"\n{family}" in text, family
    assert promtool_findings(text) == []
