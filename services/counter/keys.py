"""Every counter key, built on ``core.keys.site_prefix`` so one site's keys share the
``{site}`` hash tag and one script can update them all.

``hit.lua`` builds the same names from the prefix it is given, and refuses any it was
not also given in KEYS: ``store.HitStore`` declares, per site and batch, every key the
script may touch, built here (``test_keys`` checks that the names the script writes are
the ones these builders read, and that every one was declared).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from portal_pulse.core.keys import site_prefix

AUDIENCES = ("members", "guests", "bots")


@dataclass(frozen=True)
class SiteKeys:
    site: str

    @cached_property
    def prefix(self) -> str:
        return site_prefix(self.site)

    @property
    def totals(self) -> str:
        """Hash: visits, pageviews, downloads, bot_hits since the start."""
        return f"{self.prefix}totals"

    @property
    def baseline(self) -> str:
        """Hash of imported legacy figures: total, pageviews_total, month:YYYY-MM, day:YYYY-MM-DD."""
        return f"{self.prefix}baseline"

    def legacy_top(self, dimension: str) -> str:
        """Hash of imported all-time top entries of one statistics dimension (referrers,
        browsers, os, countries, bots): field = entry, value = visits."""
        return f"{self.prefix}legacy:top:{dimension}"

    @property
    def legacy_pages(self) -> str:
        """Set of the path digests whose page hash holds imported views (``legacy_views``)."""
        return f"{self.prefix}legacy:pages"

    def online(self, audience: str) -> str:
        """ZSET of visitor digests scored by their last hit in epoch milliseconds."""
        return f"{self.prefix}online:{audience}"

    def day(self, day: str) -> str:
        return f"{self.prefix}day:{day}"

    def month(self, month: str) -> str:
        return f"{self.prefix}month:{month}"

    def hour(self, hour: str) -> str:
        return f"{self.prefix}hour:{hour}"

    def visitors_day(self, day: str) -> str:
        """HyperLogLog of the visitor digests seen that local day."""
        return f"{self.prefix}uv:day:{day}"

    def visitors_month(self, month: str) -> str:
        return f"{self.prefix}uv:month:{month}"

    def page(self, path_digest: str) -> str:
        """Hash: views, downloads of one path (named by its digest)."""
        return f"{self.prefix}page:{path_digest}"

    def visitor(self, visitor_digest: str) -> str:
        """Hash: ``last`` (epoch ms of the visitor's last hit) and one ``v:``/``d:`` + path
        digest field per page viewed or file downloaded in the current visit."""
        return f"{self.prefix}visitor:{visitor_digest}"

    def retry(self, visitor_digest: str) -> str:
        """Hash: ``hi`` (the highest sequence number seen), ``sw`` (the window of it and the
        63 before it, ``1`` for seen) and ``ev`` (the last event ids of clients without
        sequence numbers, 12 characters each): how retries are recognised, per visitor."""
        return f"{self.prefix}retry:{visitor_digest}"

    def rate_minute(self, minute: int) -> str:
        """Hash of the rate-limit counters of one UTC minute (epoch ms // 60000): fields
        ``v:<visitor>``, ``i:<address>`` (hits) and ``b:<address>`` (bot hits)."""
        return f"{self.prefix}rate:minute:{minute}"

    def rate_hour(self, hour: int) -> str:
        """Hash of the rate-limit counters of one UTC hour (epoch ms // 3600000): fields
        ``nv:<address>`` (visits started) and ``np:<address>`` (per-path records made)."""
        return f"{self.prefix}rate:hour:{hour}"

    @property
    def absent(self) -> str:
        """Never written: ``hit.lua`` declares it so that, while the site's slot is half
        moved (classic ``MIGRATING``/``IMPORTING``), the server answers ``TRYAGAIN``
        (some keys missing) instead of running the script on either side."""
        return f"{self.prefix}absent"

    @property
    def stats_log(self) -> str:
        """List of the statistics records ``hit.lua`` appended (one entry per batch) and
        ``stats_fold.lua`` has not counted into the top lists yet (``counter.stats_fold``)."""
        return f"{self.prefix}stats:log"

    def top_keys(self, unit: str, bucket: str, dimension: str) -> tuple[str, ...]:
        """Every key of one statistics dimension in one day or month: what ``stats_fold.lua``
        may touch to count it (the rows' hash, then the ranking, which exists only once
        the bucket overflowed)."""
        return (self.top_counts(unit, bucket, dimension), self.top_rank(unit, bucket, dimension))

    def top_counts(self, unit: str, bucket: str, dimension: str) -> str:
        """Hash of one statistics dimension in one day or month (``unit`` ``day`` or
        ``month``): field = key (path, host, browser...), value ``<visits>:<pageviews>:<score>``
        (``top.top_row``): counts exact since the key was admitted, and its score in
        ``top_rank``; at most ``counter.top_entries`` keys plus ``(other)``, which holds
        the counts of every key not listed (score 0)."""
        return f"{self.prefix}top:{unit}:{bucket}:{dimension}:c"

    def top_rank(self, unit: str, bucket: str, dimension: str) -> str:
        """ZSET of the keys listed in ``top_counts`` (not ``(other)``), scored by their
        Space-Saving estimate of visits (pageviews for ``bots``): at most
        ``counter.top_entries`` members; a new key in a full bucket evicts the lowest
        into ``(other)`` (``hit.lua``)."""
        return f"{self.prefix}top:{unit}:{bucket}:{dimension}:r"

    def profile_month(self, month: str) -> str:
        """Hash of one month's visits by local hour of day (``h00``..``h23``) and ISO
        weekday (``w1`` Monday .. ``w7`` Sunday)."""
        return f"{self.prefix}profile:month:{month}"

    def profile_day(self, day: str) -> str:
        """Hash of one day's visits by local hour of day (``h00``..``h23``)."""
        return f"{self.prefix}profile:day:{day}"


BASELINE_TOTAL = "total"
BASELINE_PAGEVIEWS_TOTAL = "pageviews_total"
BASELINE_MONTH = "month:"
BASELINE_DAY = "day:"
#: The page hash field holding the imported views that ``views`` includes.
PAGE_LEGACY_VIEWS = "legacy_views"
LEGACY_TOP_DIMENSIONS = ("referrers", "browsers", "os", "countries", "bots")
