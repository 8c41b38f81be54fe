"""widget.js in a real headless Chromium, on a page served from another origin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, Route

from portal_pulse.core.settings import SiteSettings
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.visitor import visitor_from_id
from tests.browser import browser
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.counter.conftest import BROWSER_UA, Counter, CounterFactory
from tests.metric_samples import sample

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # fixture

PAGES = web.AppKey("pages", dict)
HEADERS = web.AppKey("headers", dict)  # response headers of a page, by name (e.g. a CSP)
QUEUE = "() => JSON.parse(localStorage.getItem('pulse:queue:default') || '[]')"


@pytest.fixture
async def portal() -> AsyncIterator[TestServer]:
    """A stand-in portal on its own origin; pages embed the counter's widget."""
    app = web.Application()
    pages: dict[str, str] = {}
    app[PAGES] = pages
    app[HEADERS] = {}

    async def page(request: web.Request) -> web.Response:
        if request.match_info["name"] not in pages:
            raise web.HTTPNotFound()
        name = request.match_info["name"]
        return web.Response(text=pages[name], content_type="text/html", headers=app[HEADERS].get(name, {}))

    app.router.add_get("/{name}", page)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def setup(portal: TestServer, valkey_url: str, start_counter: CounterFactory) -> Counter:
    origin = f"http://{portal.host}:{portal.port}"
    settings = make_settings(valkey_url, sites=(SiteSettings("default", "Asia/Ho_Chi_Minh", (origin,)),),
                             counter={"stats_cache_seconds": 0})
    counter = await start_counter(valkey_url, settings=settings)
    base = f"http://{counter.client.host}:{counter.client.port}"
    pages: dict[str, str] = portal.app[PAGES]
    pages["vi"] = (f'<!doctype html><meta charset="utf-8"><div id="pulse-counter"></div>'
                   f'<script src="{base}/widget.js" data-site="default" async></script>')
    pages["en"] = (f'<!doctype html><meta charset="utf-8"><div id="box"></div>'
                   f'<script src="{base}/widget.js" data-site="default" data-lang="en" data-target="box" '
                   f'data-member="1" async></script>')
    response = await counter.client.put("/v1/admin/sites/default/baseline", json={"total": 28564413},
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    return counter


async def open_page(browser: Browser, portal: TestServer, name: str) -> Page:
    context = await browser.new_context(user_agent=BROWSER_UA)
    page = await context.new_page()
    await page.goto(f"http://{portal.host}:{portal.port}/{name}")
    return page


async def figures(page: Page, target: str) -> dict[str, Any]:
    """The main rows of the block (label: value), read from its shadow root once loaded."""
    await page.wait_for_function(f"() => document.querySelector('#{target}')?.dataset.state === 'ready'")
    result: dict[str, Any] = await page.evaluate(f"""() => Object.fromEntries(
        [...document.querySelector('#{target}').shadowRoot.querySelectorAll('li:not(.pp-sub)')].map(li => [
            li.querySelector('.pulse-label').textContent, li.querySelector('.pulse-value').textContent]))""")
    return result


async def test_pageview_counted_and_figures_rendered_in_vietnamese(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    page = await open_page(browser, portal, "vi")
    shown = await figures(page, "pulse-counter")
    assert list(shown) == ["Đang truy cập", "Hôm nay", "Tháng hiện tại", "Tháng trước", "Tổng lượt truy cập"]
    assert shown["Tổng lượt truy cập"] == "28.564.414"  # vi-VN groups with dots
    assert shown["Đang truy cập"] == "1"
    stats = await counter.stats()
    assert stats["pageviews"]["total"] == 1
    assert stats["online_breakdown"]["guests"] == 1
    assert await page.evaluate(QUEUE) == []


async def test_english_labels_target_and_member(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    page = await open_page(browser, portal, "en")
    shown = await figures(page, "box")
    assert list(shown) == ["Online now", "Today", "This month", "Last month", "Total visits"]
    assert shown["Total visits"] == "28,564,414"
    assert (await counter.stats())["online_breakdown"]["members"] == 1


async def test_unsent_hits_are_queued_and_resent_once(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)

    async def unavailable(route: Route) -> None:
        await route.fulfill(status=503, content_type="application/json", headers={
            "Retry-After": "1", "Access-Control-Allow-Origin": f"http://{portal.host}:{portal.port}"},
            body=json.dumps({"error": {"code": "unavailable", "message": "down"}}))

    context = await browser.new_context(user_agent=BROWSER_UA)
    page = await context.new_page()
    await page.route("**/v1/hit*", unavailable)
    await page.goto(f"http://{portal.host}:{portal.port}/vi")
    await page.wait_for_function(f"() => ({QUEUE})().length === 1")
    queued = (await page.evaluate(QUEUE))[0]
    assert queued["kind"] == "pageview" and queued["id"]
    await figures(page, "pulse-counter")  # stats still come from GET /v1/stats
    assert (await counter.stats())["pageviews"]["total"] == 0

    await page.unroute("**/v1/hit*")
    await page.reload()
    await page.wait_for_function(f"() => ({QUEUE})().length === 0")
    await figures(page, "pulse-counter")
    await page.wait_for_timeout(100)
    stats = await counter.stats()
    assert stats["pageviews"]["total"] == 2  # the queued hit and the new one
    assert stats["today"] == 1  # one visitor, one visit
    retry = SiteKeys("default").retry(visitor_from_id("default", queued["visitor"]))
    high, window = [value.decode() for value in await counter.app_redis().hmget(retry, ["hi", "sw"])
                    if isinstance(value, bytes)]
    assert window[int(high) - queued["seq"]] == "1"  # re-sent with its original sequence number

    await page.reload()
    await figures(page, "pulse-counter")
    await page.wait_for_timeout(100)
    assert (await counter.stats())["pageviews"]["total"] == 3  # nothing sent twice
    await context.close()


async def test_heartbeats_only_while_visible(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    context = await browser.new_context(user_agent=BROWSER_UA)
    page = await context.new_page()
    await page.clock.install()
    heartbeats: list[str] = []
    page.on("request", lambda request: heartbeats.append(request.post_data or "")
            if "/v1/hit" in request.url and '"heartbeat"' in (request.post_data or "") else None)
    await page.goto(f"http://{portal.host}:{portal.port}/vi")
    await figures(page, "pulse-counter")
    await page.clock.run_for(60_000)
    await page.wait_for_timeout(200)
    assert len(heartbeats) == 1
    await page.evaluate("() => Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'})")
    await page.clock.run_for(180_000)
    await page.wait_for_timeout(200)
    assert len(heartbeats) == 1  # hidden tabs send nothing
    text = await (await counter.client.get("/metrics")).text()
    assert sample(text, "pulse_ingest_hits_total", kind="heartbeat", result="counted", site="default") == 1
    await context.close()
