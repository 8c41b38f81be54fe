"""Bot decisions: the maintained crawler list plus headless markers, cached."""

from __future__ import annotations

import pytest

from portal_pulse.counter.bots import BotDetector
from tests.counter.conftest import BROWSER_UA, GOOGLEBOT


@pytest.mark.parametrize(
    "user_agent",
    [
        GOOGLEBOT,
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
        "Mozilla/5.0 Puppeteer",
        "Mozilla/5.0 Playwright/1.49",
        "",
        "   ",
    ],
)
def test_bots_are_recognised(user_agent: str) -> None:
    assert BotDetector().is_bot(user_agent)


@pytest.mark.parametrize(
    "user_agent",
    [
        BROWSER_UA,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
        "Mobile Safari/537.36 Zalo",
    ],
)
def test_browsers_are_not_bots(user_agent: str) -> None:
    assert not BotDetector().is_bot(user_agent)


def test_missing_user_agent_is_a_bot() -> None:
    assert BotDetector().is_bot(None)


def test_decisions_are_cached() -> None:
    detector = BotDetector(cache_size=8)
    for _ in range(100):
        detector.is_bot(BROWSER_UA)
    info = detector._decide.cache_info()  # type: ignore[attr-defined]
    assert info.misses == 1
    assert info.hits == 99
