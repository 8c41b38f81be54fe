"""``ServiceMetrics``: the families every service exports (names and labels dashboards and
alerts rely on), build info, refreshers that may fail or hang without failing the scrape,
and the ``/metrics`` answer. Read back with ``prometheus_client.parser``."""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from importlib.metadata import version

import pytest
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Gauge

from portal_pulse.core.edge import install_edge
from portal_pulse.core.metrics import ServiceMetrics, package_version
from tests.conftest import ClientFactory
from tests.metric_samples import sample


async def scrape(metrics: ServiceMetrics) -> str:
    return (await metrics.render()).decode()


async def test_every_service_family_with_its_labels() -> None:
    metrics = ServiceMetrics("svc")
    metrics.redis_errors.labels("svc", "commit").inc()
    metrics.redis_up.labels("svc").set(1)
    metrics.connections_closed.labels("svc", "over_capacity").inc(2)
    metrics.open_connections.labels("svc").set(3)
    text = await scrape(metrics)
    assert sample(text, "pulse_redis_errors_total", service="svc", operation="commit") == 1
    assert sample(text, "pulse_redis_up", service="svc") == 1
    assert sample(text, "pulse_http_connections_closed_total", service="svc", reason="over_capacity") == 2
    assert sample(text, "pulse_http_open_connections", service="svc") == 3
    assert sample(text, "pulse_build_info", version=version("portal-pulse"), service="svc",
                  python=platform.python_version()) == 1
    assert sample(text, "process_open_fds") > 0  # the process collector
    major, minor, micro = (str(part) for part in sys.version_info[:3])
    assert sample(text, "python_info", implementation=platform.python_implementation(), major=major, minor=minor,
                  patchlevel=micro, version=platform.python_version()) == 1  # the platform collector


def test_a_family_clashing_with_a_collector_s_is_refused_at_registration() -> None:
    """The process and platform collectors describe nothing: only ``auto_describe``
    makes the registry know their names and refuse a second ``process_open_fds``."""
    metrics = ServiceMetrics("svc")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Gauge("process_open_fds", "A clash.", registry=metrics.registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Gauge("pulse_redis_up", "A clash.", registry=metrics.registry)


def test_the_version_is_the_installed_package_s() -> None:
    assert package_version() == version("portal-pulse")


async def test_a_failing_or_hanging_refresher_does_not_fail_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    metrics = ServiceMetrics("svc", scrape_timeout_seconds=0.05)
    fresh = Gauge("test_fresh", "Set by the last refresher.", registry=metrics.registry)

    async def failing() -> None:
        raise RuntimeError("redis said no")

    async def hanging() -> None:
        await asyncio.Event().wait()  # never set: only the scrape timeout ends it

    async def working() -> None:
        fresh.set(7)

    for refresher in (failing, hanging, working):
        metrics.add_refresher(refresher)
    with caplog.at_level(logging.WARNING, "portal_pulse.core.metrics"):
        text = await scrape(metrics)
    assert sample(text, "test_fresh") == 7  # the refreshers after the failed ones still ran
    assert sample(text, "pulse_scrape_refresh_errors_total", service="svc") == 2
    assert [r.getMessage() for r in caplog.records if r.name == "portal_pulse.core.metrics"] == [
        "metrics refresh failed: RuntimeError", "metrics refresh failed: TimeoutError"]


async def test_the_metrics_endpoint(make_client: ClientFactory) -> None:
    metrics = ServiceMetrics("svc")
    app = web.Application()

    async def item(request: web.Request) -> web.Response:
        return web.Response(status=201)

    app.router.add_post("/items/{id}", item)
    app.router.add_get("/metrics", metrics.handle_metrics)
    install_edge(app, metrics, lambda: [], "GET")
    client = await make_client(app)
    assert (await client.post("/items/secret-id")).status == 201
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert response.headers["Cache-Control"] == "no-store"
    text = await response.text()
    assert sample(text, "pulse_http_request_duration_seconds_count", service="svc", route="/items/{id}",
                  method="POST", status="201") == 1
    assert "secret-id" not in text
