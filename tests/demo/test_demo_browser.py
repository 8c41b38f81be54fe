"""The whole inactivity prompt in a real headless Chromium: two tabs of one session,
the Vietnamese prompt with its live countdown, a click in one tab closing both prompts,
and the expiry sending both tabs to the sign-out page. Real clock, short timeouts."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from tests.browser import screenshot_dir
from tests.conftest import ClientFactory
from tests.demo.demo_support import serve_portal

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROMPT_TEXT = "Bạn đã không sử dụng Site, Bấm vào đây để duy trì trạng thái đăng nhập."
DIALOG = '[role="alertdialog"]'


async def seconds_shown(page: Page) -> int:
    return int(await page.inner_text(f"{DIALOG} .pp-seconds"))


@pytest.mark.browser
async def test_two_tabs_share_one_prompt_and_one_expiry(valkey_url: str, make_client: ClientFactory) -> None:
    portal = await serve_portal(valkey_url, make_client, idle_timeout=6, prompt_seconds=4, grace_seconds=1.0)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                context = await browser.new_context(locale="vi-VN")
                await context.add_init_script(
                    "window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
                    " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
                tabs = [await context.new_page(), await context.new_page()]
                for tab in tabs:
                    await tab.goto(f"{portal.demo_url}/signed-in")
                cookies: list[Any] = await context.cookies()
                session_id = next(c["value"] for c in cookies if c["name"] == "pulse_demo_session")
                for tab in tabs:
                    assert await tab.get_attribute("script[data-session]", "data-session") == session_id

                # The prompt opens in both tabs when the server says so.
                for tab in tabs:
                    await tab.wait_for_selector(DIALOG, state="visible", timeout=10_000)
                dialog = tabs[0].locator(DIALOG)
                assert await dialog.get_attribute("aria-modal") == "true"
                text = " ".join((await dialog.inner_text()).split())
                assert PROMPT_TEXT in text
                assert re.search(r"Thời gian chờ: \d+ giây", text), text
                assert await tabs[0].locator(f"{DIALOG} [aria-live='polite'][role='status']").count() == 1
                assert await tabs[0].locator("[aria-live='assertive']").count() == 0
                assert await dialog.get_attribute("lang") == "vi"
                assert await tabs[0].evaluate("document.activeElement.className") == "pp-keepalive"

                # The countdown runs, and Escape does not dismiss it.
                before = await seconds_shown(tabs[0])
                await tabs[0].keyboard.press("Escape")
                await asyncio.sleep(1.2)
                after = await seconds_shown(tabs[0])
                assert 0 <= after < before <= 4
                assert await dialog.is_visible()

                # The demo's strict CSP holds: the prompt is styled by /session.css, nothing is blocked.
                assert await tabs[0].evaluate(
                    "getComputedStyle(document.querySelector('.pp-session')).position") == "fixed"
                assert await tabs[0].evaluate("window.cspViolations") == []
                # The counter is not running here: its block shows the page's fallback text.
                assert "tạm thời chưa hiển thị" in await tabs[0].inner_text("#pulse-counter")

                # One click keeps the session: both prompts close, the server agrees.
                await tabs[0].click(f"{DIALOG} button")
                for tab in tabs:
                    await tab.wait_for_selector(DIALOG, state="hidden", timeout=3_000)
                state = await (await portal.session.get(f"/v1/sessions/{session_id}")).json()
                assert state["state"] == "active"

                # Left alone, it expires and every tab leaves for the sign-out page.
                for tab in tabs:
                    await tab.wait_for_url(re.compile(r"/signed-out$"), timeout=15_000)
                state = await (await portal.session.get(f"/v1/sessions/{session_id}")).json()
                assert state["state"] == "expired"
                await context.close()
            finally:
                await browser.close()
    finally:
        await portal.demo.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 375])
async def test_demo_home_shows_the_block_and_the_badge(
    valkey_url: str, make_client: ClientFactory, width: int
) -> None:
    portal = await serve_portal(valkey_url, make_client, with_counter=True)
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                context = await browser.new_context(
                    viewport={"width": width, "height": 900},
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                               "Chrome/131.0.0.0 Safari/537.36")
                await context.add_init_script(
                    "window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
                    " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
                page = await context.new_page()
                await page.goto(f"{portal.demo_url}/")
                await page.wait_for_function(
                    "() => document.querySelector('#pulse-counter')?.dataset.state === 'ready'")
                rows = await page.evaluate("""() => [...document.querySelector('#pulse-counter').shadowRoot
                    .querySelectorAll('li')].map(li => li.dataset.field + '=' +
                    li.querySelector('.pulse-value').textContent)""")
                assert rows == ["online=1", "members=0", "guests=1", "bots=0", "today=1", "this_month=1",
                                "last_month=0", "total=1"]
                await page.wait_for_function("() => document.querySelector('img.badge').naturalWidth === 240")
                assert await page.evaluate("window.cspViolations") == []
                assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
                await page.screenshot(path=str(screenshot_dir() / f"demo-home-{width}.png"), full_page=True)
            finally:
                await browser.close()
    finally:
        await portal.demo.close()
