"""The statistics dimensions of a hit and how they travel to ``hit.lua``.

A counted hit carries, as the last field of its ``hit.lua`` record, its dimension keys
joined by tabs in the order of ``RECORD_ORDER`` (then the local weekday). Keys are
cleaned of the record's separators (``|``, tab, line breaks) and other control
characters, and cut to a bounded length. An empty field means "count no dimension".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The dimensions ``/v1/stats/top`` serves, in the order the record carries them.
DIMENSIONS = ("pages", "referrers", "campaigns", "browsers", "os", "devices", "countries", "bots")
OTHER = "(other)"
MAX_KEY = 256
_UNSAFE = re.compile(r"[\x00-\x1f\x7f|]")


def clean(value: str) -> str:
    """``value`` safe inside a record and bounded (separators become spaces)."""
    return _UNSAFE.sub(" ", value[:MAX_KEY])


@dataclass(frozen=True, slots=True)
class Dimensions:
    page: str
    referrer: str  # a host, ``(direct)``, ``=`` (the site's own host) or "" (excluded)
    campaign: str  # "" when the page URL has no UTM parameter
    browser: str
    os: str
    device: str
    country: str
    bot: str  # the crawler's name for a bot, "" otherwise
    weekday: int  # ISO: 1 Monday .. 7 Sunday, in the site's zone

    def field(self) -> str:
        """The record field ``hit.lua`` splits on tabs."""
        return "\t".join((
            clean(self.page), clean(self.referrer), clean(self.campaign), clean(self.browser), clean(self.os),
            clean(self.device), clean(self.country), clean(self.bot), str(self.weekday),
        ))
