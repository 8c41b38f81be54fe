"""A Redis outage across the prompt, with the real Valkey stopped and started under a
page in a real Chromium and the real clock: the page shows the prompt and a polite
notice, never leaves without having shown the prompt, and a click made while the service
could not be reached is sent once it can."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from portal_pulse.core.embedded import EmbeddedServer
from tests.browser import browser
from tests.session.browser_support import DIALOG, portal, sign_in
from tests.session.session_support import ClientFactory

pytestmark = pytest.mark.browser
__all__ = ["browser", "portal"]  # fixtures

#: Notes in localStorage (it outlives the page) whether the prompt and the notice were seen.
RECORDER = """setInterval(() => {
    const shown = document.querySelector('.pp-session:not([hidden])');
    if (shown) localStorage.setItem('pp-seen-prompt', '1');
    if (shown && shown.querySelector('.pp-notice:not([hidden])')) localStorage.setItem('pp-seen-notice', '1');
}, 25);"""
NOTICE = "Không kết nối được với máy chủ đăng nhập. Đang thử lại…"


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "valkey", appendonly=True).start()  # ours: we stop it
    yield server
    server.stop()


async def open_recorded(browser: Browser, url: str) -> Page:
    context = await browser.new_context()
    await context.add_init_script(RECORDER)
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_function("() => document.querySelector('.pp-session') !== null")
    await page.wait_for_timeout(200)  # the first answer arrived
    return page


async def test_outage_across_the_prompt_shows_it_with_a_notice_before_leaving(
    browser: Browser, portal: TestServer, make_client: ClientFactory, own_valkey: EmbeddedServer
) -> None:
    signed = await sign_in(portal, make_client, own_valkey.url, idle=7, prompt=5, grace=1.0)
    page = await open_recorded(browser, signed.url)
    own_valkey.stop()  # at t≈0.5: every call answers 503 from now on
    await page.wait_for_selector(DIALOG, state="visible", timeout=6_000)  # due at t=2
    # at once if the server was already down at t=2, else within the prompt's next poll
    await page.wait_for_selector(f"{DIALOG} .pp-notice", state="visible", timeout=6_000)
    await page.wait_for_function("(notice) => document.querySelector('.pp-session [role=status]')"
                                 ".textContent.includes(notice)", arg=NOTICE)  # said politely
    own_valkey.start()
    await page.wait_for_selector(f"{DIALOG} .pp-notice", state="hidden", timeout=6_000)
    assert await page.locator(DIALOG).is_visible()
    await page.wait_for_url("**/signed-out", timeout=12_000)  # the server said: expired
    assert (await signed.state())["state"] == "expired"
    seen = await page.evaluate("[localStorage.getItem('pp-seen-prompt'), localStorage.getItem('pp-seen-notice')]")
    assert seen == ["1", "1"]


async def test_a_click_during_the_outage_is_sent_once_the_service_answers(
    browser: Browser, portal: TestServer, make_client: ClientFactory, own_valkey: EmbeddedServer
) -> None:
    signed = await sign_in(portal, make_client, own_valkey.url, idle=12, prompt=9, grace=1.0)
    page = await open_recorded(browser, signed.url)
    own_valkey.stop()
    await page.wait_for_selector(DIALOG, state="visible", timeout=6_000)  # due at t=3
    await page.click(f"{DIALOG} button")
    await page.wait_for_selector(f"{DIALOG} .pp-notice", state="visible", timeout=3_000)
    await page.wait_for_timeout(1_000)
    assert await page.locator(DIALOG).is_visible()  # the click failed: the prompt stays, and says why
    own_valkey.start()
    await page.wait_for_selector(DIALOG, state="hidden", timeout=6_000)  # the click went through
    state = await signed.state()
    assert state["state"] == "active" and state["remaining"] > 8
    assert page.url == signed.url
