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

import crawleruseragents

GRAM = 3
#: Characters with a meaning of their own in a pattern; every other one matches itself.
SPECIAL = frozenset(".^$*+?{}[]\\|()")
QUANTIFIER_BRACES = re.compile(r"\{\d*(,\d*)?\}")
#: A token that matches something other than one known character (a class, a group...).
OTHER = None


def _class_end(pattern: str, start: int) -> int:
    """Index just past the ``]`` closing the class opened at ``start`` (a ``]`` first in
    the class, after an optional ``^``, is a member)."""
    i = start + 1
    if pattern[i:i + 1] == "^":
        i += 1
    if pattern[i:i + 1] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
        elif pattern[i] == "]":
            return i + 1
        else:
            i += 1
    return len(pattern)


def _group_end(pattern: str, start: int) -> int:
    """Index just past the ``)`` closing the group opened at ``start``."""
    depth, i = 0, start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(pattern)


def _tokens(pattern: str) -> list[str | None] | None:
    """The top-level tokens of ``pattern``: a character it must match there, or ``OTHER``.
    None when no literal is required at all (top-level alternation, global inline flags)."""
    tokens: list[str | None] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1:i + 2]
            tokens.append(escaped if escaped and not escaped.isalnum() else OTHER)
            i += 2
        elif char == "[":
            tokens.append(OTHER)
            i = _class_end(pattern, i)
        elif char == "(":
            if re.match(r"\(\?[aiLmsux]+\)", pattern[i:]):  # global flags change every match
                return None
            tokens.append(OTHER)
            i = _group_end(pattern, i)
        elif char == "|":
            return None
        elif char in "*?{":
            braces = QUANTIFIER_BRACES.match(pattern, i) if char == "{" else None
            if char == "{" and braces is None:
                tokens.append(OTHER)  # a literal brace: not worth the special case
                i += 1
                continue
            if tokens:
                tokens[-1] = OTHER  # optional or repeated: not required as one character
            tokens.append(OTHER)
            i = braces.end() if braces else i + 1
        elif char == "+":
            tokens.append(OTHER)  # the character before is required, but not what follows it
            i += 1
        elif char in SPECIAL:
            tokens.append(OTHER)
            i += 1
        else:
            tokens.append(char)
            i += 1
    return tokens


def required_literal(pattern: str) -> tuple[str, bool]:
    """The longest run of literal characters at the top level of ``pattern`` (every
    match contains it), and whether the pattern is nothing but that literal. A small
    scanner of the pattern text: conservative (a run it is unsure of is cut), and it
    reads no private ``re`` internals."""
    tokens = _tokens(pattern)
    if tokens is None:
        return "", False
    best, run = "", ""
    for token in tokens:
        if token is OTHER:
            best, run = max(best, run, key=len), ""
        else:
            run += token
    return max(best, run, key=len), OTHER not in tokens


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
