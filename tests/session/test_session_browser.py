"""session.js in a real Chromium against the real session service, with the server's
manual clock and the page's clock moved in step: a laptop sleep, stale events, a user
working through a short active window, typing while the prompt opens, the announcements."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from portal_pulse.core.clock import ManualClock
from tests.browser import browser
from tests.session.browser_support import (
    DIALOG,
    Lockstep,
    install_paused,
    open_paused,
    portal,
    seconds_shown,
    sign_in,
)
from tests.session.session_support import ClientFactory, session_settings, start

pytestmark = pytest.mark.browser
__all__ = ["browser", "portal"]  # fixtures


async def test_after_a_sleep_the_countdown_is_the_servers(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    """The page frozen and performance.now() stopped for 28 s while the wall clock and the
    server moved on: the page shows the server's remaining time, not a stale event's."""
    signed = await sign_in(portal, make_client, valkey_url, idle=40, prompt=20, clock=clock)
    step = await open_paused(browser, signed.url, clock)
    page = step.page
    await step.elapse(1.5)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
    clock.advance(28)  # the server at t=30: prompt since t=20, 10 s left
    wall = await page.evaluate("Date.now()")
    await page.clock.set_system_time((wall + 28_000) / 1000)  # the wall clock moved, the monotonic one did not
    await page.wait_for_timeout(300)  # the scheduler announces the prompt (queued for the frozen page)
    await cdp.send("Page.setWebLifecycleState", {"state": "active"})
    await step.elapse(0.5)
    await page.wait_for_selector(DIALOG, state="visible")
    await step.elapse(0.5)
    remaining = (await signed.state())["remaining"]
    assert 8 <= remaining <= 10  # the server's view: t=31 of a prompt ending at t=40 (or 40.5)
    assert abs(await seconds_shown(page) - remaining) <= 1
    await step.elapse(5)
    assert abs(await seconds_shown(page) - (remaining - 5)) <= 1


async def test_after_a_sleep_without_events_the_prompt_opens_on_time(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    """No event stream (blocked): only the jump between wall and monotonic clocks tells the
    page that time passed while it slept; the prompt still opens when the server's does."""
    signed = await sign_in(portal, make_client, valkey_url, idle=40, prompt=20, clock=clock)
    context = await browser.new_context()
    await context.route("**/events", lambda route: route.abort())
    page = await context.new_page()
    await install_paused(page, clock)
    await page.goto(signed.url)
    step = Lockstep(page, clock)
    await step.elapse(2)
    clock.advance(12)  # asleep for 12 s: the server is at t=14, the prompt is due at t=20
    wall = await page.evaluate("Date.now()")
    await page.clock.set_system_time((wall + 12_000) / 1000)
    await step.elapse(5)  # t=19
    assert await page.locator(DIALOG).is_hidden()
    await step.elapse(2)  # t=21
    assert await page.locator(DIALOG).is_visible()
    assert 18 <= await seconds_shown(page) <= 20
    await context.close()


async def test_a_stale_event_never_moves_the_countdown_back(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    signed = await sign_in(portal, make_client, valkey_url, idle=40, prompt=20, clock=clock)
    step = await open_paused(browser, signed.url, clock)
    page = step.page
    await step.elapse(21)
    await page.wait_for_selector(DIALOG, state="visible")
    await page.click(f"{DIALOG} button")  # extended at t=21.5
    await page.wait_for_selector(DIALOG, state="hidden")
    await step.elapse(1)
    # Another tab relays the prompt event of t=20 late: it is older than what the page knows.
    stale = {"id": signed.session_id, "type": "prompt", "state": "prompt", "remaining": 20, "prompt_in": 0,
             "idle_timeout": 40, "prompt_seconds": 20, "server_time": clock.now() - 3}
    await page.evaluate("""([name, view]) => new BroadcastChannel(name).postMessage(
        {kind: 'snapshot', snapshot: view})""", [f"portal-pulse:{signed.session_id}", stale])
    await step.elapse(1)
    assert await page.locator(DIALOG).is_hidden()
    assert (await signed.state())["state"] == "active"


async def test_a_click_answered_by_a_process_whose_clock_is_behind_still_closes_the_prompt(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    """Another tab's click was answered by a second process whose clock is 3 s behind this
    one's (hosts drift): its view is newer (a higher version) but stamped earlier. Ordering
    views by time would drop it and leave the prompt counting down an extended session."""
    signed = await sign_in(portal, make_client, valkey_url, idle=40, prompt=20, clock=clock)
    step = await open_paused(browser, signed.url, clock)
    page = step.page
    await step.elapse(21)
    await page.wait_for_selector(DIALOG, state="visible")
    behind = await start(make_client, session_settings(valkey_url), ManualClock(clock.now() - 3))
    response = await behind.post(f"/v1/sessions/{signed.session_id}/keepalive")
    assert response.status == 200
    view = await response.json()
    assert view["server_time"] < clock.now() and view["state"] == "active"
    await page.evaluate("""([name, view]) => new BroadcastChannel(name).postMessage(
        {kind: 'snapshot', snapshot: view})""", [f"portal-pulse:{signed.session_id}", view])
    await step.elapse(1)
    assert await page.locator(DIALOG).is_hidden()
    assert (await signed.state())["state"] == "active"


async def test_a_working_user_never_gets_the_prompt(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    """The demo's timing (20 s idle, 10 s prompt) is shorter than the 30 s default throttle:
    activity is reported often enough anyway."""
    signed = await sign_in(portal, make_client, valkey_url, idle=20, prompt=10, clock=clock)
    step = await open_paused(browser, signed.url, clock)
    page = step.page
    reports: list[str] = []
    page.on("request", lambda request: reports.append(request.url) if request.url.endswith("/activity") else None)
    for second in range(40):
        await page.mouse.move(10 + second * 3, 200)
        await step.elapse(1)
        assert await page.locator(DIALOG).is_hidden(), f"prompt at t={second + 1}"
    state = await signed.state()
    assert state["state"] == "active" and state["prompt_in"] > 5
    assert 8 <= len(reports) <= 15  # about one per 10/3 s, not one per move


async def test_the_prompt_does_not_take_keystrokes_from_a_typing_user(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    signed = await sign_in(portal, make_client, valkey_url, idle=40, prompt=20, clock=clock)
    step = await open_paused(browser, signed.url, clock)
    page = step.page
    await page.focus("#q")
    await page.keyboard.type("xin ")
    clock.advance(21)  # the activity reports were lost, say: the server opens the prompt
    await page.keyboard.type("chào")
    await step.elapse(0.5)
    await page.wait_for_selector(DIALOG, state="visible")
    await page.keyboard.type(" bạn ")  # Space and Enter go to the field, not to "keep"
    await page.keyboard.press("Enter")
    await step.elapse(0.5)
    assert await page.evaluate("document.activeElement.id") == "q"
    assert await page.input_value("#q") == "xin chào bạn "
    assert (await signed.state())["state"] == "prompt"
    live = page.locator(f"{DIALOG} [role=status]")
    assert "Bạn đã không sử dụng Site" in await live.inner_text()  # told, without moving focus

    await page.keyboard.press("Tab")  # a keyboard user reaches the prompt in one key
    assert await page.evaluate("document.activeElement.className") == "pp-keepalive"
    await page.keyboard.press("Enter")
    await step.elapse(0.5)
    await page.wait_for_selector(DIALOG, state="hidden")
    assert (await signed.state())["state"] == "active"


async def test_the_remaining_time_is_announced_at_open_30_and_10_seconds(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock
) -> None:
    signed = await sign_in(portal, make_client, valkey_url, idle=100, prompt=45, clock=clock)
    step = await open_paused(browser, signed.url, clock)
    page = step.page
    await page.evaluate("""() => {
        window.heard = [];
        const live = document.querySelector('.pp-session [role=status]');
        new MutationObserver(() => { if (live.textContent) window.heard.push(live.textContent); })
            .observe(live, {subtree: true, childList: true, characterData: true});
    }""")
    await step.elapse(54, step=3)  # nothing happens before the prompt is due at t=55
    await step.elapse(2)
    dialog = page.locator(DIALOG)
    assert await dialog.is_visible()
    assert await dialog.get_attribute("lang") == "vi"
    assert await page.locator("[aria-live=assertive]").count() == 0
    assert await page.evaluate("document.activeElement.className") == "pp-keepalive"
    await step.elapse(40, step=1)  # to 4 s left
    heard: list[str] = json.loads(await page.evaluate("JSON.stringify(window.heard)"))
    assert heard == ["Thời gian chờ: 45 giây", "Thời gian chờ: 30 giây", "Thời gian chờ: 10 giây"]
    name = await page.locator(f"{DIALOG} button").get_attribute("aria-label")
    assert name is None  # the button's name is the message: it does not change each second
