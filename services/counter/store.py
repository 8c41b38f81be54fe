"""The write side in Redis: ``hit.lua`` run once per site per batch, through the
core ``ScriptRunner`` (one pipelined round trip on a standalone server; on a cluster one
call per site, concurrently, each to its own shard; NOSCRIPT and replica
acknowledgements handled there). A site's hits travel as one argument (one record per
line), so the client encodes a few strings per commit instead of eleven per hit. The
online window's cleanup (dropping visitors who left it) runs at most once a second per
site and process: reads count by score, so it only bounds memory, and skipping it keeps
a commit's fixed cost low."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from importlib.resources import files

from services.core.scripts import Call, Script, ScriptRunner
from services.core.settings import CounterSettings
from services.counter.hit import CODES, CommitResult, Hit
from services.counter.keys import SiteKeys

log = logging.getLogger(__name__)

HIT_SCRIPT = files("services.counter").joinpath("hit.lua").read_text(encoding="utf-8")
HIT = Script("hit", HIT_SCRIPT)
#: Margin on top of the visit window before a visitor's state is cleaned up.
VISITOR_TTL_MARGIN_SECONDS = 600
#: How often (by the hits' clock) a site's commit also cleans up its online window.
CLEANUP_EVERY_SECONDS = 1.0


def growth_bounds(settings: CounterSettings) -> str:
    """ARGV[12] of hit.lua: the bounds on what clients can make Redis keep (issue 11)."""
    return "|".join(str(value) for value in (
        settings.max_new_paths_per_ip_per_hour, settings.path_retention_seconds, settings.path_keep_views,
        settings.event_ids_per_visitor, settings.max_bot_hits_per_ip_per_minute, settings.max_online_bots,
    ))


class ScriptFailed(Exception):
    """The script answered with an error that is not a storage outage (a bug)."""


class HitStore:
    def __init__(self, runner: ScriptRunner, settings: CounterSettings) -> None:
        self._runner = runner
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
        self._bounds = growth_bounds(settings)
        #: After the records: rows kept per statistics dimension and bucket.
        self._tail = str(settings.top_entries)
        self._cleaned: dict[str, float] = {}

    def _cleanup_flag(self, site: str, hits: Sequence[Hit], indexes: Sequence[int]) -> str:
        latest = max(hits[index].now for index in indexes)
        if latest - self._cleaned.get(site, float("-inf")) < CLEANUP_EVERY_SECONDS:
            return "0"
        self._cleaned[site] = latest
        return "1"

    async def load_script(self) -> None:
        """Load ``hit.lua`` ahead of the first commit (NOSCRIPT is still handled later)."""
        await self._runner.load(HIT)

    async def commit(self, hits: Sequence[Hit]) -> list[CommitResult | BaseException]:
        """Record ``hits`` (any sites); one result per hit, in order.

        A site whose script failed gets the exception for each of its hits; other sites
        of the batch are still recorded and acknowledged.
        """
        by_site: dict[str, list[int]] = defaultdict(list)
        for index, hit in enumerate(hits):
            by_site[hit.site].append(index)
        calls: list[Call] = []
        for site, indexes in by_site.items():
            keys = SiteKeys(site)
            records = "\n".join([hits[index].record() for index in indexes])
            cleanup = self._cleanup_flag(site, hits, indexes)
            calls.append(((keys.totals,), (keys.prefix, *self._head, cleanup, records, self._bounds, self._tail)))
        replies = await self._runner.run_many(HIT, calls)
        results: list[CommitResult | BaseException] = [ScriptFailed("no reply")] * len(hits)
        for indexes, reply in zip(by_site.values(), replies, strict=True):
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
