"""The referring host of a hit: ``(direct)`` when none, the site's own hosts and the
referrer spammers of Matomo's maintained list excluded. Pure; the list is data shipped
with the package (``data/referrer-spammers.txt``, public domain, see its LICENSE)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from urllib.parse import urlsplit

DIRECT = "(direct)"
#: The hit came from one of the site's own pages: no referrer row for the pageview; a
#: visit it starts counts as ``(direct)`` (``hit.lua`` knows this marker).
INTERNAL = "="
#: Spam or unparseable: counted nowhere in the referrers.
EXCLUDED = ""
MAX_HOST = 253


@lru_cache(maxsize=1)
def spam_hosts() -> frozenset[str]:
    """Matomo's referrer spammers, one host per line (empty lines skipped)."""
    text = files("portal_pulse.counter").joinpath("data/referrer-spammers.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def host_of(url: str) -> str | None:
    """The lower-cased host of ``url`` without ``www.`` (None if it has none)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host or len(host) > MAX_HOST:
        return None
    host = host.rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _suffixes(host: str) -> Iterable[str]:
    """``a.b.example.com``, ``b.example.com``, ``example.com``, ``com``."""
    parts = host.split(".")
    return (".".join(parts[index:]) for index in range(len(parts)))


class ReferrerClassifier:
    """Maps a referrer URL to the key the ``referrers`` dimension counts."""

    def __init__(self, own_origins: Iterable[str], spam: frozenset[str] | None = None) -> None:
        self._own = frozenset(host for host in (host_of(origin) for origin in own_origins) if host)
        self._spam = spam_hosts() if spam is None else spam

    def is_spam(self, host: str) -> bool:
        return any(suffix in self._spam for suffix in _suffixes(host))

    def classify(self, referrer: str | None) -> str:
        if not referrer:
            return DIRECT
        host = host_of(referrer)
        if host is None or self.is_spam(host):
            return EXCLUDED
        if host in self._own:
            return INTERNAL
        return host
