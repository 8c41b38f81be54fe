"""What every browser test shares: the real Chromium (Playwright), polling that works with
the page's clock paused or under a strict CSP, axe-core, and where screenshots go."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).resolve().parent / ".node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def until(page: Page, expression: str, within: float = 5.0) -> None:
    """Wait (in real time) until ``expression`` is true in the page: unlike
    ``wait_for_function`` this polls from here, so it works with the page's clock paused."""
    deadline = asyncio.get_running_loop().time() + within
    while not await page.evaluate(expression):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s: {expression}")
        await asyncio.sleep(0.05)


def screenshot_dir() -> Path:
    """Where browser tests leave screenshots for a person to look at."""
    path = Path(os.environ.get("PULSE_SCREENSHOTS", Path(tempfile.gettempdir()) / "portal-pulse-screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path



async def axe_violations(page: Page, selector: str = "body") -> list[dict[str, Any]]:
    """axe-core's serious and critical violations (WCAG 2.x A/AA and best practice).
    axe runs on timers: a page clock installed by the test must be running."""
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result: list[dict[str, Any]] = await page.evaluate(
        """async (selector) => {
            const found = await axe.run(document.querySelector(selector), {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa',
                                                'best-practice']}});
            return found.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html)}));
        }""",
        selector,
    )
    return result
