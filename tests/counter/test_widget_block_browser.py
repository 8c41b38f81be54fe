"""The counter block as a visitor sees it, in a real Chromium: isolated from a hostile
host stylesheet, laid out in a 200-px sidebar and on a 375-px phone, themed through CSS
custom properties, under a strict CSP, with placeholders while loading and when the
counter is slow or stopped, and fresh figures when a tab comes back."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, Route

from tests.browser import axe_violations, browser, screenshot_dir, until
from tests.counter.conftest import BROWSER_UA, Counter, CounterFactory
from tests.counter.test_widget_browser import HEADERS, PAGES, portal, setup

pytestmark = pytest.mark.browser
__all__ = ["browser", "portal"]  # fixtures

HOSTILE = """<style>
* { font-size: 22px !important; line-height: 2.6 !important; letter-spacing: 3px; text-transform: uppercase;
    font-family: "Comic Sans MS", cursive; color: #ff00ff; }
ul, li { list-style: square outside !important; margin: 14px !important; padding: 12px !important;
         display: inline !important; float: left !important; }
span { display: block !important; border: 3px solid red !important; padding: 8px !important; }
svg { width: 120px !important; height: 120px !important; }
section { background: black !important; border: 6px dashed yellow !important; }
body { margin: 0; background: #e2e8f0; }
.page { display: flex; gap: 16px; padding: 16px; } .main { flex: 1; } .sidebar { width: 200px; flex: none; }
#pulse-counter { --pulse-accent: rgb(159, 18, 57); }
</style>"""

LAYOUT = """(target) => {
    const host = document.querySelector(target), root = host.shadowRoot;
    const box = host.getBoundingClientRect();
    const rows = [...root.querySelectorAll('li')].map(li => {
        const r = li.getBoundingClientRect(), label = li.querySelector('.pulse-label'),
              value = li.querySelector('.pulse-value'), icon = li.querySelector('svg').getBoundingClientRect();
        const lr = label.getBoundingClientRect(), vr = value.getBoundingClientRect();
        return {field: li.dataset.field, left: r.left, right: r.right, height: r.height,
                labelLines: label.getClientRects().length, valueLines: value.getClientRects().length,
                valueClipped: value.scrollWidth > value.clientWidth + 1, labelTop: lr.top, valueTop: vr.top,
                labelFont: parseFloat(getComputedStyle(label).fontSize), valueRight: vr.right,
                inherited: [getComputedStyle(label).textTransform, getComputedStyle(label).letterSpacing,
                            getComputedStyle(label).fontFamily.includes('Comic')],
                labelRight: lr.right, valueLeft: vr.left, iconWidth: icon.width,
                iconStroke: getComputedStyle(li.querySelector('svg')).stroke, value: value.textContent};
    });
    const block = root.querySelector('.pp-block');
    return {host: {left: box.left, right: box.right, width: box.width}, rows,
            overflow: block.scrollWidth > block.clientWidth + 1, docOverflow:
            document.documentElement.scrollWidth > innerWidth};
}"""


def page_html(base: str, extra: str = "", breakdown: bool = True) -> str:
    flag = ' data-breakdown="1"' if breakdown else ""
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>Cổng</title>{HOSTILE}'
            f'</head><body><div class="page"><main class="main"><h1>Tin tức</h1><p>Bài viết.</p></main>'
            f'<aside class="sidebar"><h2>Thống kê</h2><div id="pulse-counter">Thống kê truy cập</div></aside>'
            f'</div>{extra}<script src="{base}/widget.js" data-site="default"{flag} async></script></body></html>')


def counter_base(counter: Counter) -> str:
    return f"http://{counter.client.host}:{counter.client.port}"


async def open_block(browser: Browser, portal: TestServer, name: str, width: int = 1024) -> Page:
    context = await browser.new_context(user_agent=BROWSER_UA, viewport={"width": width, "height": 800})
    page = await context.new_page()
    await page.goto(f"http://{portal.host}:{portal.port}/{name}")
    return page


async def ready(page: Page) -> None:
    """Figures in and the stylesheet applied (polled from here: works under a strict CSP)."""
    await until(page, "document.querySelector('#pulse-counter')?.dataset.state === 'ready'"
                " && !document.querySelector('#pulse-counter').shadowRoot.querySelector('.pp-block').hidden", 10)


def check_layout(layout: dict[str, Any], expected_width: float) -> None:
    host, rows = layout["host"], layout["rows"]
    assert abs(host["width"] - expected_width) < 1
    assert [r["field"] for r in rows] == ["online", "members", "guests", "bots", "today", "this_month",
                                          "last_month", "total"]
    assert not layout["overflow"] and not layout["docOverflow"]
    for r in rows:
        assert host["left"] - 0.5 <= r["left"] and r["right"] <= host["right"] + 0.5, r
        assert r["labelLines"] == 1 and r["valueLines"] == 1, r  # one line per row
        assert abs(r["labelTop"] - r["valueTop"]) < 3, r
        assert not r["valueClipped"], r
        assert r["labelRight"] <= r["valueLeft"] + 0.5, r  # label and figure never overlap
        assert r["labelFont"] < 16, r  # the host page's 22px !important did not reach in
        assert r["inherited"] == ["none", "normal", False], r  # nor what the host element inherits
        assert 10 < r["iconWidth"] < 24, r
        assert r["iconStroke"] in ("rgb(159, 18, 57)", "rgb(75, 85, 99)", "rgb(107, 114, 128)"), r
    main = [r for r in rows if r["field"] in ("online", "today", "this_month", "last_month", "total")]
    assert max(r["valueRight"] for r in main) - min(r["valueRight"] for r in main) < 1  # figures aligned
    assert main[0]["iconStroke"] == "rgb(159, 18, 57)"  # themed by --pulse-accent from the page


async def test_block_in_a_narrow_sidebar_and_on_a_phone_under_a_hostile_stylesheet(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    portal.app[PAGES]["hostile"] = page_html(counter_base(counter))
    shots = screenshot_dir()
    page = await open_block(browser, portal, "hostile", width=1024)
    await ready(page)
    layout = await page.evaluate(LAYOUT, "#pulse-counter")
    check_layout(layout, 200)
    total = next(r for r in layout["rows"] if r["field"] == "total")
    assert total["value"] == "28.564.414"
    await page.locator("#pulse-counter").screenshot(path=str(shots / "widget-sidebar-200.png"))

    phone = await open_block(browser, portal, "hostile", width=375)
    await phone.add_style_tag(content=".page { flex-direction: column } .sidebar { width: auto }")
    await ready(phone)
    check_layout(await phone.evaluate(LAYOUT, "#pulse-counter"), 375 - 32)
    await phone.screenshot(path=str(shots / "widget-phone-375.png"), full_page=True)


async def test_block_under_a_strict_csp_is_styled_and_accessible(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    base = counter_base(counter)
    html = (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Cổng</title></head><body><main>'
            f'<h1>Tin tức</h1><div id="pulse-counter"></div></main>'
            f'<script src="{base}/widget.js" data-site="default" async></script></body></html>')
    csp = f"default-src 'none'; script-src {base}; style-src {base}; connect-src {base}"
    portal.app[PAGES]["strict"] = html
    portal.app[HEADERS]["strict"] = {"Content-Security-Policy": csp}
    context = await browser.new_context(user_agent=BROWSER_UA)
    await context.add_init_script("window.cspViolations = []; document.addEventListener("
                                  "'securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective));")
    page = await context.new_page()
    response = await page.goto(f"http://{portal.host}:{portal.port}/strict")
    assert response is not None and response.headers["content-security-policy"] == csp
    await ready(page)
    styled = await page.evaluate("""() => {
        const block = document.querySelector('#pulse-counter').shadowRoot.querySelector('.pp-block');
        const row = block.querySelector('.pp-row');
        return [getComputedStyle(row).display, getComputedStyle(block).borderTopStyle];
    }""")
    assert styled == ["grid", "solid"]
    assert await page.evaluate("window.cspViolations") == []
    assert await axe_violations(page) == []


async def test_a_slow_counter_shows_a_placeholder_then_gives_up_clearly(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    portal.app[PAGES]["slow"] = page_html(counter_base(counter))
    context = await browser.new_context(user_agent=BROWSER_UA)
    held: list[Route] = []
    holding = [True]

    async def hang(route: Route) -> None:
        if holding[0]:
            held.append(route)  # never answered: a counter that accepts and does not reply
        else:
            await route.continue_()

    await context.route("**/v1/*", hang)
    page = await context.new_page()
    await page.clock.install()
    await page.goto(f"http://{portal.host}:{portal.port}/slow")
    await page.wait_for_function("() => document.querySelector('#pulse-counter')?.dataset.state === 'loading'")
    await page.clock.run_for(3_100)  # the stylesheet is in; the figures are not
    loading = await page.evaluate("""() => {
        const root = document.querySelector('#pulse-counter').shadowRoot;
        return [root.querySelector('.pp-status').textContent,
                root.querySelector('[data-field=total] .pulse-value').textContent];
    }""")
    assert loading == ["Đang tải số liệu…", "…"]
    await page.clock.run_for(5_000)  # 8 s: the calls are given up
    await page.wait_for_function("() => document.querySelector('#pulse-counter').dataset.state === 'unavailable'")
    stopped = await page.evaluate("""() => {
        const root = document.querySelector('#pulse-counter').shadowRoot;
        return [root.querySelector('.pp-status').textContent,
                [...root.querySelectorAll('.pulse-value')].map(v => v.textContent)];
    }""")
    assert stopped[0] == "Chưa tải được số liệu truy cập. Sẽ thử lại sau."
    assert set(stopped[1]) == {"—"}
    await page.locator("#pulse-counter").screenshot(path=str(screenshot_dir() / "widget-unavailable.png"))

    holding[0] = False  # the counter answers again: the next refresh fills the block
    await page.clock.run_for(52_000)  # to t=60.1 s: the first heartbeat (its timeout is 8 s away)
    await page.wait_for_function("() => document.querySelector('#pulse-counter').dataset.state === 'ready'")
    await context.close()


async def test_a_stopped_counter_shows_a_clear_placeholder(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    base = counter_base(counter)
    portal.app[PAGES]["stopped"] = page_html(base, breakdown=False)
    context = await browser.new_context(user_agent=BROWSER_UA)
    await context.route("**/v1/*", lambda route: route.abort("connectionrefused"))
    page = await context.new_page()
    await page.goto(f"http://{portal.host}:{portal.port}/stopped")
    await page.wait_for_function("() => document.querySelector('#pulse-counter')?.dataset.state === 'unavailable'")
    text = await page.locator("#pulse-counter .pp-block").inner_text()
    assert "Chưa tải được số liệu truy cập" in text and "—" in text
    await context.close()

    # widget.js itself unreachable: the container's own content stays as the fallback
    portal.app[PAGES]["nothing"] = page_html("http://127.0.0.1:9", breakdown=False)
    context = await browser.new_context(user_agent=BROWSER_UA)
    page = await context.new_page()
    await page.goto(f"http://{portal.host}:{portal.port}/nothing")
    await page.wait_for_load_state("load")
    assert await page.text_content("#pulse-counter") == "Thống kê truy cập"
    await context.close()


async def test_a_tab_coming_back_shows_fresh_figures_at_once(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    portal.app[PAGES]["back"] = page_html(counter_base(counter))
    context = await browser.new_context(user_agent=BROWSER_UA)
    page = await context.new_page()
    await page.clock.install()
    await page.goto(f"http://{portal.host}:{portal.port}/back")
    await ready(page)
    await page.evaluate("""() => { window.visibility = 'hidden';
        Object.defineProperty(document, 'visibilityState', {get: () => window.visibility});
        document.dispatchEvent(new Event('visibilitychange')); }""")
    await page.clock.run_for(170_000)  # hidden for almost three minutes; others visit meanwhile
    for visitor in ("a", "b", "c"):
        await counter.hit(visitor=visitor)
    await page.evaluate("() => { window.visibility = 'visible';"
                        " document.dispatchEvent(new Event('visibilitychange')); }")
    await page.wait_for_function("""() => document.querySelector('#pulse-counter').shadowRoot
        .querySelector('[data-field=total] .pulse-value').textContent === '28.564.417'""", timeout=3_000)
    online = await page.evaluate("""() => document.querySelector('#pulse-counter').shadowRoot
        .querySelector('[data-field=guests] .pulse-value').textContent""")
    assert online == "4"
    await context.close()


async def test_the_badge_renders_as_an_image_where_no_script_runs(
    browser: Browser, portal: TestServer, valkey_url: str, start_counter: CounterFactory
) -> None:
    counter = await setup(portal, valkey_url, start_counter)
    base = counter_base(counter)
    portal.app[PAGES]["badge"] = (f'<!doctype html><html lang="vi"><meta charset="utf-8"><title>Cổng</title>'
                                  f'<img id="badge" src="{base}/v1/badge.svg?site=default&amp;lang=vi" '
                                  f'alt="Thống kê truy cập">')
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"http://{portal.host}:{portal.port}/badge")
    badge = page.locator("#badge")
    await badge.wait_for()
    box = await badge.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (240, 137)  # decoded: the SVG's own size
    await badge.screenshot(path=str(screenshot_dir() / "badge-vi.png"))
    await context.close()
