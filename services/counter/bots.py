"""Is this User-Agent a bot? The maintained ``crawler-user-agents`` list plus markers of
headless and automated browsers. Decisions are cached (LRU): the list is one big regex."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from portal_pulse.counter.crawlers import crawler_matcher

#: Automation markers the crawler list does not (always) carry; matched case-insensitively.
HEADLESS_MARKERS = (
    "headlesschrome",
    "headless",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "webdriver",
    "slimerjs",
    "htmlunit",
    "chrome-lighthouse",
    "electron/",
)
#: Longer User-Agents are cut before matching and caching (bounded work and memory).
MAX_USER_AGENT = 512


def decide(user_agent: str) -> bool:
    ua = user_agent.strip()
    if not ua:
        return True
    lowered = ua.lower()
    if any(marker in lowered for marker in HEADLESS_MARKERS):
        return True
    return crawler_matcher().matches(ua)


class BotDetector:
    def __init__(self, cache_size: int = 4096) -> None:
        self._decide: Callable[[str], bool] = lru_cache(maxsize=cache_size)(decide)

    def is_bot(self, user_agent: str | None) -> bool:
        return self._decide((user_agent or "")[:MAX_USER_AGENT])
