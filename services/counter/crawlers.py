"""The maintained crawler list (``crawleruseragents``), matched fast and exactly.

``crawleruseragents.is_crawler`` runs ~60 chunked regular expressions over the whole
User-Agent: ~300 µs per new User-Agent, the largest cost of a pixel hit (each no-JS
visitor has its own User-Agent, so the decision cache does not help). Almost every
pattern of the list is a plain literal, and each of the others has a literal run that
any match must contain. ``CrawlerMatcher`` indexes those required literals by their
first three characters: a User-Agent is tested only against patterns whose required
literal it contains, and a pattern that is more than its literal is then confirmed
with its own regular expression. The answer is the same as ``is_crawler``'s (the
tests compare both over the list's own examples and browser User-Agents).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]

import crawleruseragents

GRAM = 3


def required_literal(pattern: str) -> tuple[str, bool]:
    """The longest run of literal characters at the top level of ``pattern`` (every
    match contains it), and whether the pattern is nothing but that literal."""
    tree = sre_parser.parse(pattern)
    if tree.state.flags & ~re.UNICODE:  # inline flags (case folding...): no literal is required
        return "", False
    best, run, plain = "", "", True
    for op, arg in tree:
        if op is sre_constants.LITERAL:
            run += chr(arg)
            continue
        plain = False
        best, run = max(best, run, key=len), ""
    return max(best, run, key=len), plain


class CrawlerMatcher:
    def __init__(self, patterns: Iterable[str]) -> None:
        #: Patterns without a usable literal: always searched.
        self._always: list[re.Pattern[str]] = []
        self._by_gram: dict[str, list[tuple[str, re.Pattern[str] | None]]] = defaultdict(list)
        for pattern in patterns:
            literal, plain = required_literal(pattern)
            if len(literal) < GRAM:
                self._always.append(re.compile(pattern))
                continue
            self._by_gram[literal[:GRAM]].append((literal, None if plain else re.compile(pattern)))
        self._grams = frozenset(self._by_gram)

    def matches(self, user_agent: str) -> bool:
        for regex in self._always:
            if regex.search(user_agent):
                return True
        grams = {user_agent[i:i + GRAM] for i in range(len(user_agent) - GRAM + 1)}
        for gram in self._grams.intersection(grams):
            for literal, confirm in self._by_gram[gram]:
                if literal in user_agent and (confirm is None or confirm.search(user_agent)):
                    return True
        return False

    def first_literal(self, user_agent: str) -> str:
        """The required literal of a pattern that matches ``user_agent`` ("" if none):
        a readable name of the crawler for the ``bots`` statistics."""
        grams = {user_agent[i:i + GRAM] for i in range(len(user_agent) - GRAM + 1)}
        for gram in sorted(self._grams.intersection(grams)):
            for literal, confirm in self._by_gram[gram]:
                if literal in user_agent and (confirm is None or confirm.search(user_agent)):
                    return literal
        return ""


@lru_cache(maxsize=1)
def crawler_matcher() -> CrawlerMatcher:
    """The matcher of the installed crawler list (built once per process: pure data)."""
    return CrawlerMatcher(entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA)
