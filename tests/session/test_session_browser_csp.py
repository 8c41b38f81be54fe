"""The prompt on a page with a strict Content-Security-Policy (styles and scripts only
from the session service's origin, nothing inline): it is still a fixed overlay over the
whole viewport, no violation is reported, and axe-core finds nothing serious."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from portal_pulse.core.clock import ManualClock
from tests.browser import axe_violations, browser, screenshot_dir, until
from tests.session.browser_support import DIALOG, PAGES, Lockstep, install_paused, portal, sign_in
from tests.session.session_support import ClientFactory

pytestmark = pytest.mark.browser
__all__ = ["browser", "portal"]  # fixtures

VIOLATIONS = """window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"""


@pytest.mark.parametrize("width", [1280, 375])
async def test_prompt_under_a_strict_csp_is_a_fixed_overlay_and_accessible(
    browser: Browser, portal: TestServer, make_client: ClientFactory, valkey_url: str, clock: ManualClock,
    width: int,
) -> None:
    signed = await sign_in(portal, make_client, valkey_url, idle=40, prompt=20, clock=clock, name="strict")
    service = signed.service_url
    csp = (f"default-src 'none'; script-src {service}; style-src {service}; connect-src {service}; "
           "img-src 'none'; base-uri 'none'; form-action 'none'")
    portal.app[PAGES]["strict"].headers["Content-Security-Policy"] = csp
    context = await browser.new_context(viewport={"width": width, "height": 700}, locale="vi-VN")
    await context.add_init_script(VIOLATIONS)
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    await install_paused(page, clock)
    response = await page.goto(signed.url)
    assert response is not None and response.headers["content-security-policy"] == csp
    step = Lockstep(page, clock)
    await step.elapse(21)
    await page.wait_for_selector(DIALOG, state="visible")
    await until(page, "getComputedStyle(document.querySelector('.pp-session')).position === 'fixed'")

    overlay = await page.evaluate("""() => {
        const el = document.querySelector('.pp-session'), style = getComputedStyle(el), r = el.getBoundingClientRect();
        const box = document.querySelector('.pp-session-dialog').getBoundingClientRect();
        const hit = document.elementFromPoint(5, 5);
        return {position: style.position, z: Number(style.zIndex), left: r.left, top: r.top, right: r.right,
                bottom: r.bottom, vw: innerWidth, vh: innerHeight, covers: el.contains(hit),
                background: getComputedStyle(document.querySelector('.pp-keepalive')).backgroundColor,
                boxLeft: box.left, boxRight: box.right};
    }""")
    assert overlay["position"] == "fixed" and overlay["z"] > 1000
    assert (overlay["left"], overlay["top"]) == (0, 0)
    assert (overlay["right"], overlay["bottom"]) == (overlay["vw"], overlay["vh"])
    assert overlay["covers"]  # the page beneath is not clickable
    assert overlay["background"] != "rgba(0, 0, 0, 0)"  # styled by /session.css
    assert 0 < overlay["boxLeft"] < overlay["boxRight"] < overlay["vw"]  # the box fits the screen
    await page.screenshot(path=str(screenshot_dir() / f"session-prompt-csp-{width}.png"))

    assert await page.evaluate("window.cspViolations") == []
    assert not [text for text in console if "Content Security Policy" in text]
    await page.clock.resume()
    assert await axe_violations(page) == []
