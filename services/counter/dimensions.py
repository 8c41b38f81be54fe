"""The statistics dimensions of a hit and how they travel to ``hit.lua``.

A counted hit carries, as the last field of its ``hit.lua`` record, its dimension keys
joined by tabs in the order of ``DIMENSIONS`` (then the local weekday). Keys are cleaned
of the record's separators (``|``, tab, line breaks) and other control characters, and
cut to a bounded length. An empty field means "count no dimension".
"""

from __future__ import annotations

import re

#: The dimensions ``/v1/stats/top`` serves, in the order the record carries them.
DIMENSIONS = ("pages", "referrers", "campaigns", "browsers", "os", "devices", "countries", "bots")
OTHER = "(other)"
MAX_KEY = 256
_UNSAFE = re.compile(r"[\x00-\x1f\x7f|]")


def clean(value: str) -> str:
    """``value`` safe inside a record and bounded (separators become spaces)."""
    value = value[:MAX_KEY]
    if value.isprintable() and "|" not in value:  # the common case, without a regex
        return value
    return _UNSAFE.sub(" ", value)


def record_field(page: str, referrer: str, campaign: str, client: str, country: str, bot: str, weekday: int) -> str:
    """The record field ``hit.lua`` splits on tabs. ``referrer`` is a host, ``(direct)``,
    ``=`` (the site's own host) or "" (excluded); ``campaign`` "" when none; ``client``
    the browser, os and device joined by tabs (already clean); ``bot`` the crawler's
    name for a bot, else ""; ``weekday`` ISO (1 Monday .. 7 Sunday) in the site's zone."""
    return f"{clean(page)}\t{referrer}\t{clean(campaign)}\t{client}\t{country}\t{bot}\t{weekday}"
