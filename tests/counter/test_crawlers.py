"""The fast crawler matcher answers exactly as ``crawleruseragents.is_crawler``."""

from __future__ import annotations

import random
import re

import crawleruseragents

from portal_pulse.counter.crawlers import CrawlerMatcher, crawler_matcher, required_literal

BROWSERS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
)


def test_required_literal_of_patterns() -> None:
    assert required_literal("Googlebot\\/") == ("Googlebot/", True)
    assert required_literal("AdsBot-Google([^-]|$)") == ("AdsBot-Google", False)
    assert required_literal("[wW]get") == ("get", False)
    assert required_literal("Chirp|gotosocial") == ("", False)
    assert required_literal("(?i)bot") == ("", False)
    assert required_literal("[^]x]Scooter") == ("Scooter", False)  # a ']' first in a class is a member
    assert required_literal("ab+cde") == ("cde", False)  # "abbcde": "abc" is no substring
    assert required_literal("Yandex(Bot)?x?/") == ("Yandex", False)
    assert required_literal("a{2}bcd") == ("bcd", False)
    assert required_literal("Mail\\.RU") == ("Mail.RU", True)


def test_every_match_of_every_listed_pattern_contains_its_literal() -> None:
    for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        literal, plain = required_literal(entry["pattern"])
        for ua in entry.get("instances", []):
            found = re.search(entry["pattern"], ua)
            if found:
                assert literal in found.group(0), (entry["pattern"], literal, ua)
                assert not plain or found.group(0) == literal, (entry["pattern"], ua)


def test_matcher_agrees_with_the_list_on_examples_and_near_misses() -> None:
    samples = [ua for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for ua in entry.get("instances", [])]
    samples += [f"{browser} b{n}" for browser in BROWSERS for n in range(20)]
    rnd = random.Random(5)
    for ua in list(samples):
        cut = rnd.randrange(len(ua)) if ua else 0
        samples += [ua[:cut] + ua[cut + 3:], ua.lower(), ua.upper()]
    matcher = crawler_matcher()
    assert [ua for ua in samples if matcher.matches(ua) != crawleruseragents.is_crawler(ua)] == []


def test_patterns_without_a_literal_are_still_searched() -> None:
    matcher = CrawlerMatcher(["Chirp|gotosocial", "^Seekbot", "Googlebot\\/"])
    assert matcher.matches("gotosocial/1.0")
    assert matcher.matches("Seekbot 2")
    assert not matcher.matches("a Seekbot")
    assert matcher.matches("x Googlebot/2.1")
    assert not matcher.matches("Mozilla/5.0")
