"""Every counter key, built on ``core.keys.site_prefix`` so one site's keys share the
``{site}`` hash tag and one script can update them all.

``hit.lua`` builds the same names from the prefix it is given; ``test_keys`` checks that
the names the script writes are the ones these builders read.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.core.keys import site_prefix

AUDIENCES = ("members", "guests", "bots")


@dataclass(frozen=True)
class SiteKeys:
    site: str

    @property
    def prefix(self) -> str:
        return site_prefix(self.site)

    @property
    def totals(self) -> str:
        """Hash: visits, pageviews, downloads, bot_hits since the start."""
        return f"{self.prefix}totals"

    @property
    def baseline(self) -> str:
        """Hash of imported legacy figures: total, pageviews_total, month:YYYY-MM."""
        return f"{self.prefix}baseline"

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


BASELINE_TOTAL = "total"
BASELINE_PAGEVIEWS_TOTAL = "pageviews_total"
BASELINE_MONTH = "month:"
