"""A real Prometheus scrapes both services, built by their real factories and served on
free ports: the counts it sees match the hits sent, every rule evaluates cleanly, and
every PromQL expression of the rules and the dashboard is accepted by its query API."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from portal_pulse.core.embedded import free_port
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.session.app import create_app as create_session
from tests.conftest import make_settings
from tests.deploy.artefacts import JOBS, PROMETHEUS_DIR, all_expressions, load_yaml, tool
from tests.deploy.services_under_test import exercise_session, send_hits

pytestmark = pytest.mark.prometheus

HITS = 25
DEADLINE_SECONDS = 30.0


@pytest.fixture
async def services(valkey_url: str) -> AsyncIterator[dict[str, str]]:
    """Both services as real servers on 127.0.0.1, keyed by Prometheus job name."""
    settings = make_settings(valkey_url)
    runners: list[web.AppRunner] = []
    urls: dict[str, str] = {}
    try:
        for job, app in zip(JOBS, (create_counter(settings), create_session(settings)), strict=True):
            runner = web.AppRunner(app, shutdown_timeout=2)
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            urls[job] = f"http://127.0.0.1:{port}"
        yield urls
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def scrape_config(tmp_path: Path, services: dict[str, str]) -> Path:
    """deploy/prometheus/prometheus.yml aimed at the test's services, scraping every second."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    rule_files = []
    for name in config["rule_files"]:
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
        rule_files.append(str(tmp_path / name))
    config["rule_files"] = rule_files
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in services:
            job["static_configs"][0]["targets"] = [services[job["job_name"]].removeprefix("http://")]
            jobs.append(job)
    assert [job["job_name"] for job in jobs] == list(JOBS)
    config["scrape_configs"] = jobs
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def prometheus(tmp_path: Path, services: dict[str, str]) -> Iterator[str]:
    """A Prometheus of the test's own on a free port, stopped afterwards."""
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [tool("prometheus", "/usr/bin/prometheus"), f"--config.file={scrape_config(tmp_path, services)}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if process.returncode not in (0, -15):
            print((tmp_path / "prometheus.log").read_text(errors="replace"))


async def eventually(check: Callable[[], Awaitable[Any]], what: str, within: float = DEADLINE_SECONDS) -> Any:
    """Poll ``check`` until it returns a truthy value, for at most ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except aiohttp.ClientError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def api(http: aiohttp.ClientSession, prometheus: str, path: str, **params: str) -> Any:
    async with http.get(f"{prometheus}/api/v1/{path}", params=params) as response:
        body = await response.json()
    assert body["status"] == "success", body
    return body["data"]


async def scalar(http: aiohttp.ClientSession, prometheus: str, query: str) -> float | None:
    result = (await api(http, prometheus, "query", query=query))["result"]
    return float(result[0]["value"][1]) if result else None


async def test_prometheus_scrapes_counts_and_accepts_every_expression(
    services: dict[str, str], prometheus: str
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

        async def targets_up() -> bool:
            active = (await api(http, prometheus, "targets"))["activeTargets"]
            return {t["labels"]["job"] for t in active if t["health"] == "up"} == set(JOBS)

        await eventually(targets_up, "both targets up")

        counter = services["portal-pulse-counter"]
        await send_hits(http, counter, HITS)
        await exercise_session(http, services["portal-pulse-session"])

        async def counted() -> bool:
            # Each target is scraped on its own cycle: wait until both have been scraped
            # since the traffic, then every figure must be exact.
            hits = await scalar(http, prometheus, 'sum(pulse_ingest_hits_total{result="counted"})')
            visits = await scalar(http, prometheus, "sum(pulse_ingest_visits_total)")
            created = await scalar(http, prometheus, 'sum(pulse_session_transitions_total{type="created"})')
            return hits == HITS and visits == HITS and created == 1

        await eventually(counted, f"{HITS} counted hits and visits and 1 created session in Prometheus")
        assert await scalar(http, prometheus, "sum(pulse_ingest_pageviews_total)") == HITS
        assert await scalar(http, prometheus, 'sum(pulse_session_transitions_total{type="created"})') == 1
        assert await scalar(http, prometheus, 'min(pulse_redis_up{job=~"portal-pulse-.*"})') == 1

        async def rules_evaluated() -> list[dict[str, Any]] | None:
            groups = (await api(http, prometheus, "rules"))["groups"]
            found = [rule for group in groups for rule in group["rules"]]
            return found if found and all(r.get("health") == "ok" for r in found) else None

        evaluated = await eventually(rules_evaluated, "every rule evaluated without error")
        assert {rule["name"] for rule in evaluated} >= {
            name.split(":", 1)[1] for name in all_expressions() if not name.startswith("dashboard:")
        }
        assert [r["name"] for r in evaluated if r["type"] == "alerting" and r["state"] == "firing"] == []

        failures = {}
        for where, expr in all_expressions().items():
            async with http.post(f"{prometheus}/api/v1/query", data={"query": expr}) as response:
                body = await response.json()
            if body.get("status") != "success":
                failures[where] = body.get("error")
        assert failures == {}
