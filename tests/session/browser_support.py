"""session.js in a real headless Chromium: a stand-in portal on its own origin (pages and
response headers set per test), the real session service, and helpers to move the
server's manual clock and the page's clock (Playwright's ``page.clock``) in step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from portal_pulse.core.clock import Clock, ManualClock
from tests.browser import until
from tests.session.session_support import Client, ClientFactory, create, session_settings, start

DIALOG = '[role="alertdialog"]'
PAGES = web.AppKey("pages", dict)


@dataclass
class PortalPage:
    html: str
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def portal() -> AsyncIterator[TestServer]:
    """A portal on its own origin; tests put pages (and their headers) in ``app[PAGES]``."""
    app = web.Application()
    pages: dict[str, PortalPage] = {"signed-out": PortalPage("<!doctype html><title>Signed out</title><p>out")}
    app[PAGES] = pages

    async def serve(request: web.Request) -> web.Response:
        found = pages.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(text=found.html, content_type="text/html", headers=found.headers)

    app.router.add_get("/{name}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def origin_of(server: TestServer) -> str:
    return f"http://{server.host}:{server.port}"


def signed_in_html(session_url: str, session_id: str, lang: str = "vi") -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portal</title></head>
<body><main><h1>Portal</h1><label for="q">Message</label> <input id="q" autocomplete="off">
<p>Some article text.</p></main>
<script src="{escape(session_url)}/session.js" data-session="{escape(session_id)}" data-lang="{lang}"
 data-logout-url="/signed-out" async></script></body></html>"""


@dataclass
class Signed:
    """A running session service, one session and the portal page that shows it."""

    service: Client
    session_id: str
    url: str

    @property
    def service_url(self) -> str:
        return str(self.service.make_url("")).rstrip("/")

    async def state(self) -> dict[str, Any]:
        response = await self.service.get(f"/v1/sessions/{self.session_id}")
        data: dict[str, Any] = await response.json()
        assert response.status == 200, (response.status, data)  # a failure says what answered
        return data


async def sign_in(
    portal: TestServer, make_client: ClientFactory, redis_url: str, *, idle: int, prompt: int,
    clock: Clock | None = None, grace: float = 1.0, headers: dict[str, str] | None = None, name: str = "page",
) -> Signed:
    settings = session_settings(redis_url, origins=(origin_of(portal),), grace_seconds=grace,
                                scheduler_max_sleep_seconds=0.05)
    service = await start(make_client, settings, clock)
    session_id = str((await create(service, idle_timeout=idle, prompt_seconds=prompt))["id"])
    signed = Signed(service, session_id, f"{origin_of(portal)}/{name}")
    html = signed_in_html(signed.service_url, session_id)
    portal.app[PAGES][name] = PortalPage(html, headers or {})
    return signed


@dataclass
class Lockstep:
    """The server's manual clock and the page's clock, moved together."""

    page: Page
    clock: ManualClock

    async def elapse(self, seconds: float, step: float = 0.5) -> None:
        left = seconds
        while left > 1e-9:
            part = min(step, left)
            self.clock.advance(part)
            await self.page.clock.run_for(int(part * 1000))
            await self.page.wait_for_timeout(30)  # real time for answers and events to arrive
            left -= part


async def install_paused(page: Page, clock: ManualClock) -> None:
    """The page's clock, paused near the server's time (the page compares only server
    times with each other, so a second or two apart does not matter)."""
    await page.clock.install(time=clock.now())
    await page.clock.pause_at(clock.now() + 5)


async def open_paused(browser: Browser, url: str, clock: ManualClock) -> Lockstep:
    """Open ``url`` with the page's clock installed and paused."""
    context = await browser.new_context(locale="vi-VN")
    page = await context.new_page()
    await install_paused(page, clock)
    await page.goto(url)
    await until(page, "document.querySelector('.pp-session') !== null")
    step = Lockstep(page, clock)
    await step.elapse(0.5)
    return step


async def seconds_shown(page: Page) -> int:
    return int(await page.inner_text(f"{DIALOG} .pp-seconds"))
