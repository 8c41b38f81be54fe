"""The widget keeps hits it could not send while the network was down (no HTTP answer at
all, unlike the 503 case in tests/counter/test_widget_browser.py) and sends them later,
once, with their sequence numbers: in a real Chromium against a real counter process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Route, async_playwright

from tests.reliability.load import BROWSER_UA
from tests.reliability.probe import get_json, request
from tests.reliability.procs import SITES, Cluster

pytestmark = pytest.mark.browser
QUEUE = "() => JSON.parse(localStorage.getItem('pulse:queue:default') || '[]')"
PAGE = web.AppKey("page", list)
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def portal() -> AsyncIterator[TestServer]:
    app = web.Application()
    app[PAGE] = [""]

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=request.app[PAGE][0], content_type="text/html")

    app.router.add_get("/", page)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def test_hits_queued_while_offline_are_sent_later_once(shared: Cluster, portal: TestServer) -> None:
    origin = f"http://{portal.host}:{portal.port}"
    sites: list[dict[str, Any]] = [{**SITES[0], "origins": [origin]}, SITES[1]]
    counter = shared.service("counter", {"PULSE_SITES": json.dumps(sites), "PULSE_COUNTER_STATS_CACHE_SECONDS": "0"})
    portal.app[PAGE][0] = (f'<!doctype html><meta charset="utf-8"><div id="pulse-counter"></div>'
                           f'<script src="{counter.url}/widget.js" data-site="default" async></script>')

    async def offline(route: Route) -> None:
        await route.abort("internetdisconnected")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(user_agent=BROWSER_UA)
            page = await context.new_page()
            await page.route("**/v1/hit*", offline)
            await page.goto(origin + "/")
            await page.wait_for_function(f"() => ({QUEUE})().length === 1")
            queued = (await page.evaluate(QUEUE))[0]
            assert queued["id"] and queued["kind"] == "pageview"
            assert (await get_json(f"{counter.url}/v1/stats?site=default"))["pageviews"]["total"] == 0

            await page.unroute("**/v1/hit*")
            await page.reload()
            await page.wait_for_function(f"() => ({QUEUE})().length === 0")
            await page.wait_for_function(
                "() => document.querySelector('#pulse-counter').shadowRoot"
                "?.querySelector('[data-field=total] .pulse-value')?.textContent === '1'")
            stats = await get_json(f"{counter.url}/v1/stats?site=default")
            assert stats["pageviews"]["total"] == 2 and stats["total"] == 1
            await context.close()
        finally:
            await browser.close()

    # the queued hit was recorded under its own sequence number: sending it again changes nothing
    body = {k: queued[k] for k in ("site", "kind", "path", "visitor", "id", "seq") if k in queued}
    status, headers, _ = await request("POST", f"{counter.url}/v1/hit", json=body)
    assert status == 204 and headers.get("X-Pulse-Counted") == "0; reason=duplicate"
