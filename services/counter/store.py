"""The write side in Redis: ``hit.lua`` run once per site per commit, all sites of a
batch in one pipelined round trip (EVALSHA, with a SCRIPT LOAD fallback on NOSCRIPT).
A site's hits travel as one argument (one record per line), so the client encodes a
few strings per commit instead of eleven per hit. The online window's cleanup (dropping
visitors who left it) runs at most once a second per site and process: reads count by
score, so it only bounds memory, and skipping it keeps a commit's fixed cost low."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from importlib.resources import files

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from services.core.settings import CounterSettings
from services.counter.hit import CODES, CommitResult, Hit
from services.counter.keys import SiteKeys

log = logging.getLogger(__name__)

HIT_SCRIPT = files("services.counter").joinpath("hit.lua").read_text(encoding="utf-8")
#: Margin on top of the visit window before a visitor's state is cleaned up.
VISITOR_TTL_MARGIN_SECONDS = 600
#: How often (by the hits' clock) a site's commit also cleans up its online window.
CLEANUP_EVERY_SECONDS = 1.0


class ScriptFailed(Exception):
    """The script answered with an error that is not a storage outage (a bug)."""


class HitStore:
    def __init__(self, client: Redis, settings: CounterSettings) -> None:
        self._client = client
        self._sha = hashlib.sha1(HIT_SCRIPT.encode()).hexdigest()
        window = max(settings.visit_window_seconds, settings.online_window_seconds)
        self._head = [
            str(settings.visit_window_seconds * 1000),
            str(settings.online_window_seconds * 1000),
            str(settings.dedupe_seconds),
            "1" if settings.rate_limits_enabled else "0",
            str(settings.max_hits_per_visitor_per_minute),
            str(settings.max_hits_per_ip_per_minute),
            str(settings.max_new_visits_per_ip_per_hour),
            str((window + VISITOR_TTL_MARGIN_SECONDS) * 1000),
        ]
        self._cleaned: dict[str, float] = {}

    def _cleanup_flag(self, site: str, hits: Sequence[Hit], indexes: Sequence[int]) -> str:
        latest = max(hits[index].now for index in indexes)
        if latest - self._cleaned.get(site, float("-inf")) < CLEANUP_EVERY_SECONDS:
            return "0"
        self._cleaned[site] = latest
        return "1"

    async def load_script(self) -> None:
        """Load ``hit.lua`` ahead of the first commit (NOSCRIPT is still handled later)."""
        await self._client.script_load(HIT_SCRIPT)

    async def commit(self, hits: Sequence[Hit]) -> list[CommitResult | BaseException]:
        """Record ``hits`` (any sites) in one round trip; one result per hit, in order.

        A site whose script failed gets the exception for each of its hits; other sites
        of the batch are still recorded and acknowledged.
        """
        by_site: dict[str, list[int]] = defaultdict(list)
        for index, hit in enumerate(hits):
            by_site[hit.site].append(index)
        sites = list(by_site)
        replies = await self._run(hits, by_site, sites)
        missing = [site for site, reply in zip(sites, replies, strict=True) if isinstance(reply, NoScriptError)]
        if missing:
            await self._client.script_load(HIT_SCRIPT)
            retried = dict(zip(missing, await self._run(hits, by_site, missing), strict=True))
            replies = [retried.get(site, reply) for site, reply in zip(sites, replies, strict=True)]
        results: list[CommitResult | BaseException] = [ScriptFailed("no reply")] * len(hits)
        for site, reply in zip(sites, replies, strict=True):
            indexes = by_site[site]
            if isinstance(reply, BaseException):
                for index in indexes:
                    results[index] = reply
                continue
            if not isinstance(reply, list) or len(reply) != len(indexes):
                log.error("hit script answered %r for %d hits", type(reply).__name__, len(indexes))
                continue
            for index, code in zip(indexes, reply, strict=True):
                results[index] = CODES[int(code)]
        return results

    async def _run(
        self, hits: Sequence[Hit], by_site: dict[str, list[int]], sites: Sequence[str]
    ) -> list[object]:
        if len(sites) == 1:  # the common case: one command, no pipeline object
            site = sites[0]
            keys = SiteKeys(site)
            records = "\n".join([hits[index].record() for index in by_site[site]])
            cleanup = self._cleanup_flag(site, hits, by_site[site])
            try:
                args = (keys.prefix, *self._head, cleanup, records)
                return [await self._client.evalsha(self._sha, 1, keys.totals, *args)]
            except ResponseError as exc:  # as the pipeline reports it: this site's reply
                return [exc]
        async with self._client.pipeline(transaction=False) as pipe:
            for site in sites:
                keys = SiteKeys(site)
                records = "\n".join([hits[index].record() for index in by_site[site]])
                cleanup = self._cleanup_flag(site, hits, by_site[site])
                pipe.evalsha(self._sha, 1, keys.totals, keys.prefix, *self._head, cleanup, records)
            replies: list[object] = await pipe.execute(raise_on_error=False)
            return replies
