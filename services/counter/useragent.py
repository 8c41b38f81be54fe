"""Browser, operating system, device class and bot name of a User-Agent, parsed with
``ua-parser`` and its maintained builtin rules (the ``ua-parser-rs`` accelerator when
installed). A portal sees few distinct User-Agents, so parses are cached in a bounded
LRU: a repeated User-Agent costs a dictionary look-up. Only the parsed names leave this
module; the User-Agent itself is never stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import ua_parser

from portal_pulse.counter.bots import HEADLESS_MARKERS, MAX_USER_AGENT
from portal_pulse.counter.crawlers import crawler_matcher
from portal_pulse.counter.dimensions import clean

OTHER = "Other"
DESKTOP, MOBILE, TABLET = "desktop", "mobile", "tablet"
#: Markers of tablets that ua-parser's device family does not reveal on its own.
TABLET_MARKERS = ("ipad", "tablet", "kindle", "silk/", "playbook", "sm-t", "tab")
MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Firefox OS"})


@dataclass(frozen=True, slots=True)
class ClientKind:
    browser: str
    os: str
    device: str
    #: The crawler's name for a bot, "" for a person's browser.
    bot_name: str
    #: browser, os and device, cleaned and joined by tabs: the record's part (built once).
    field: str = ""


def device_class(user_agent: str, os_family: str, device_family: str) -> str:
    lowered = user_agent.lower()
    if "ipad" in lowered or (os_family == "Android" and "mobile" not in lowered):
        return TABLET
    if os_family in MOBILE_OS or "mobi" in lowered:
        return TABLET if any(marker in lowered for marker in TABLET_MARKERS[1:]) else MOBILE
    if device_family != OTHER and any(marker in lowered for marker in TABLET_MARKERS):
        return TABLET
    return DESKTOP


def bot_name(user_agent: str, family: str, device_family: str) -> str:
    """ua-parser's name for known spiders, else the crawler list's matching pattern's
    literal, else the headless marker; ``(other)`` when none of these names it."""
    if device_family == "Spider" and family != OTHER:
        return family
    literal = crawler_matcher().first_literal(user_agent)
    if literal:
        return literal.strip(" /;:()+-_.")[:64] or "(other)"
    lowered = user_agent.lower()
    for marker in HEADLESS_MARKERS:
        if marker in lowered:
            return marker.rstrip("/")
    return "(other)" if user_agent.strip() else "(empty)"


def parse(user_agent: str) -> ClientKind:
    result = ua_parser.parse(user_agent)
    browser = result.user_agent.family if result.user_agent else OTHER
    os_family = result.os.family if result.os else OTHER
    device_family = result.device.family if result.device else OTHER
    device = device_class(user_agent, os_family, device_family)
    return ClientKind(
        browser=browser,
        os=os_family,
        device=device,
        bot_name=clean(bot_name(user_agent, browser, device_family)),
        field="\t".join((clean(browser), clean(os_family), device)),
    )


class UserAgentParser:
    """``parse`` behind a bounded LRU keyed by the (cut) User-Agent string."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._parse: Callable[[str], ClientKind] = lru_cache(maxsize=cache_size)(parse)

    def parse(self, user_agent: str | None) -> ClientKind:
        return self._parse((user_agent or "")[:MAX_USER_AGENT])
