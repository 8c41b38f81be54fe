"""The ``enrich_dimensions`` step's work: one hit's statistics keys from its request.

Everything here is pure and cached where it repeats: the User-Agent parse (bounded
LRU), the weekday of a local day, the referrer classifier of each site (built once).
The pixel carries no page query of its own, so its campaign comes from the page URL in
its ``Referer`` header (the embedding page)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from portal_pulse.core.settings import Settings
from portal_pulse.counter.campaigns import campaign_of
from portal_pulse.counter.dimensions import clean, record_field
from portal_pulse.counter.geo import country_of
from portal_pulse.counter.referrers import ReferrerClassifier
from portal_pulse.counter.useragent import UserAgentParser

if TYPE_CHECKING:
    from portal_pulse.counter.pipeline import HitContext


@lru_cache(maxsize=64)
def weekday_of(day: str) -> int:
    return date.fromisoformat(day).isoweekday()


def page_query(ctx: HitContext) -> str | None:
    if ctx.parsed.query is not None:
        return ctx.parsed.query
    if ctx.request.method == "GET":  # the pixel: the embedding page's URL
        referer = ctx.request.headers.get("Referer")
        if referer and "utm_" in referer:
            try:
                return urlsplit(referer).query
            except ValueError:
                return None
    return None


class DimensionEnricher:
    def __init__(self, settings: Settings) -> None:
        cache_size = settings.counter.user_agent_cache_size
        self._agents = UserAgentParser(cache_size)
        # Build the parser's rules now (~0.8 s), at start-up, not inside the first hit.
        self._agents.parse("Mozilla/5.0")
        #: Per site: referrer URL -> cleaned key, cached (a portal sees few referrers).
        self._referrers = {
            site.name: lru_cache(maxsize=cache_size)(_cleaned(ReferrerClassifier(site.origins)))
            for site in settings.sites
        }

    def field(self, ctx: HitContext) -> str:
        """The hit's record field (``dimensions.record_field``)."""
        parsed = ctx.parsed
        client = self._agents.parse(ctx.request.headers.get("User-Agent"))
        return record_field(
            parsed.path,
            self._referrers[parsed.site.name](parsed.referrer),
            campaign_of(page_query(ctx)),
            client.field,
            country_of(ctx.client_ip),
            client.bot_name if ctx.bot else "",
            weekday_of(ctx.cal.day),
        )


def _cleaned(classifier: ReferrerClassifier) -> Callable[[str | None], str]:
    def classify(referrer: str | None) -> str:
        return clean(classifier.classify(referrer))

    return classify
