"""The statistics page in a real headless Chromium: it renders under its CSP without a
console error, its figures equal the API's, the period picker works, axe-core finds no
serious or critical violation, and it is photographed at desktop and phone width."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from portal_pulse.counter.keys import SiteKeys
from tests.conftest import ADMIN_TOKEN
from tests.counter.conftest import GOOGLEBOT, Counter, CounterFactory
from tests.counter.test_dimensions import IPHONE, VN_ADDRESS
from tests.counter.test_widget_browser import browser  # noqa: F401  (the fixture that launches Chromium)

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / ".node" / "node_modules" / "axe-core" / "axe.min.js"
#: Set to a folder to keep the screenshots (they are always taken into tmp_path).
SCREENSHOTS = os.environ.get("PULSE_SCREENSHOT_DIR")


async def traffic(counter: Counter) -> None:
    """Two days of visits with known referrers, campaigns, browsers and addresses."""
    response = await counter.client.put("/v1/admin/sites/default/baseline", headers={
        "Authorization": f"Bearer {ADMIN_TOKEN}"}, json={"total": 28564413, "months": {"2026-03": 802647}})
    assert response.status == 200
    await counter.app_redis().hset(SiteKeys("default").legacy_top("pages"), mapping={"/tin-tuc/cu": 9120})
    for index in range(12):
        await counter.hit(visitor=f"a{index}", path=f"/tin-tuc/{index % 4}", referrer="https://www.google.com/",
                          headers={"X-Forwarded-For": VN_ADDRESS})
    counter.clock.advance(-86400)  # yesterday
    for index in range(5):
        await counter.hit(visitor=f"b{index}", path="/gioi-thieu", ua=IPHONE, referrer="https://zalo.me/")
    counter.clock.advance(86400)
    await counter.hit(visitor="bot", ua=GOOGLEBOT)


async def api(counter: Counter, path: str, **params: str) -> Any:
    response = await counter.client.get(path, params={"site": "default", **params})
    assert response.status == 200
    return await response.json()


async def open_stats(launched: Browser, counter: Counter, query: str, width: int = 1280,
                     bypass_csp: bool = False) -> tuple[Page, list[str]]:
    """The page in a new context; ``bypass_csp`` only to inject axe-core (the page's CSP
    rightly refuses injected scripts), never for the checks of the page itself."""
    context = await launched.new_context(viewport={"width": width, "height": 900}, bypass_csp=bypass_csp)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    response = await page.goto(f"http://{counter.client.host}:{counter.client.port}/stats?{query}")
    assert response is not None and response.status == 200
    return page, problems


def digits(text: str) -> int:
    return int(re.sub(r"\D", "", text))


async def page_rows(page: Page, dimension: str) -> dict[str, int]:
    cells = page.locator(f'section[aria-labelledby="h-top"] [data-dimension="{dimension}"] tbody tr')
    found: dict[str, int] = {}
    for index in range(await cells.count()):
        row = cells.nth(index)
        key = await row.locator("td.key").get_attribute("data-key")
        assert key is not None
        found[key] = digits(await row.locator("td[data-visits]").inner_text())
    return found


async def assert_tops_match(page: Page, counter: Counter, first: str, last: str) -> None:
    for dimension in ("pages", "referrers", "browsers", "countries"):
        document = await api(counter, "/v1/stats/top", dimension=dimension, limit="10", **{"from": first, "to": last})
        assert await page_rows(page, dimension) == {row["key"]: row["visits"] for row in document["rows"]}


async def test_page_figures_picker_and_accessibility(
    valkey_url: str, start_counter: CounterFactory, browser: Browser, tmp_path: Path  # noqa: F811
) -> None:
    counter = await start_counter(valkey_url)
    await traffic(counter)
    page, problems = await open_stats(browser, counter, "site=default")
    assert await page.locator("html").get_attribute("lang") == "vi"
    assert "Thống kê truy cập" in await page.locator("h1").inner_text()
    stats = await api(counter, "/v1/stats")
    for field in ("online", "today", "this_month", "last_month", "total"):
        assert digits(await page.locator(f'dd[data-field="{field}"]').inner_text()) == stats[field], field
    assert await page.locator('dd[data-field="total"]').inner_text() == f"{stats['total']:,}".replace(",", ".")
    assert await page.locator("svg.chart").count() == 5
    assert await page.locator("svg.chart rect.bar").count() == 24 + 30 + 12 + 24 + 7  # November has 30 days
    march = await page.locator("svg.chart").nth(2).locator("rect.bar").nth(2).locator("title").text_content()
    assert march is not None and "802.647" in march  # the baseline month in the year chart
    await assert_tops_match(page, counter, "2026-11-01", "2026-11-26")
    assert "Số liệu cũ (trước khi chuyển)" in await page.locator("section.legacy").inner_text()
    assert "/tin-tuc/cu" in await page.locator("section.legacy").inner_text()

    audited, _ = await open_stats(browser, counter, "site=default", bypass_csp=True)
    await audited.add_script_tag(path=str(AXE))
    result = await audited.evaluate("async () => await axe.run(document)")
    serious = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []

    await page.screenshot(path=tmp_path / "stats-desktop.png", full_page=True)
    phone, phone_problems = await open_stats(browser, counter, "site=default&lang=en", width=375)
    assert "Imported (before migration)" in await phone.locator("section.legacy").inner_text()
    await phone.screenshot(path=tmp_path / "stats-375.png", full_page=True)
    if SCREENSHOTS:
        for name in ("stats-desktop.png", "stats-375.png"):
            shutil.copy(tmp_path / name, Path(SCREENSHOTS) / name)
    overflow = await phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing wider than the phone

    # The picker: yesterday only (a day range), then a preset link (this month).
    await page.fill('input[name="from"]', "2026-11-25")
    await page.fill('input[name="to"]', "2026-11-25")
    await page.click('form.picker button[type="submit"]')
    await page.wait_for_url(re.compile(r"from=2026-11-25&to=2026-11-25"))
    await assert_tops_match(page, counter, "2026-11-25", "2026-11-25")
    assert await page_rows(page, "pages") == {"/gioi-thieu": 5}
    await page.click('a.preset:has-text("Tháng này")')
    await page.wait_for_url(re.compile(r"from=2026-11-01&to=2026-11-26"))
    assert (await page_rows(page, "referrers")) == {"google.com": 12, "zalo.me": 5}
    assert problems == [] and phone_problems == []


async def test_page_behind_a_read_token(
    valkey_url: str, start_counter: CounterFactory, browser: Browser  # noqa: F811
) -> None:
    import dataclasses

    from portal_pulse.core.secret import Secret
    from tests.counter.conftest import counter_settings

    settings = counter_settings(valkey_url)
    sites = tuple(dataclasses.replace(site, stats_token=Secret("read-token-123")) if site.name == "default" else site
                  for site in settings.sites)
    counter = await start_counter(valkey_url, settings=dataclasses.replace(settings, sites=sites))
    page, _ = await open_stats(browser, counter, "site=default&token=read-token-123")
    await page.click('a.preset:has-text("Hôm nay")')  # links keep the token
    await page.wait_for_url(re.compile(r"token=read-token-123"))
    assert await page.locator('dd[data-field="today"]').count() == 1
