"""The write side in Redis: ``hit.lua`` run once per site per batch, through the
core ``ScriptRunner`` (one pipelined round trip on a standalone server; on a cluster one
call per site, concurrently, each to its own shard; NOSCRIPT and replica
acknowledgements handled there). A site's hits travel as one argument (one record per
line), so the client encodes a few strings per commit instead of eleven per hit. The
online window's cleanup (dropping visitors who left it) runs at most once a second per
site and process: reads count by score, so it only bounds memory, and skipping it keeps
a commit's fixed cost low.

Every key the script may touch is declared in KEYS (``batch_keys``, a superset: a
rate counter is declared even when the limit it counts turns out not to be checked),
and the script refuses any key it builds that was not ("undeclared key ...": a bug,
answered 500, not an outage). So proxies and servers that route or check by the
declared keys see them all, and, with the never-written ``absent`` key among them, while
a site's slot moves the classic way the server refuses every call whole (TRYAGAIN,
resent by the ScriptRunner) instead of running it on a half-moved slot."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib.resources import files

from redis.exceptions import ResponseError

from portal_pulse.core.scripts import Call, Script, ScriptRunner, indexes_by
from portal_pulse.core.settings import CounterSettings
from portal_pulse.counter.hit import CODES, CommitResult, Hit, Kind
from portal_pulse.counter.keys import AUDIENCES, SiteKeys

log = logging.getLogger(__name__)

def _packaged(part: str) -> str:
    return files("portal_pulse.counter").joinpath(part).read_text(encoding="utf-8")


def counter_script(name: str, read: Callable[[str], str] = _packaged) -> str:
    """A counter script with the key guard (``site_keys.lua``) in front of it; ``read``
    gives a file of ``services/counter`` by name (as installed, or another version's)."""
    return "\n".join(read(part) for part in ("site_keys.lua", name))


HIT_SCRIPT = counter_script("hit.lua")
HIT = Script("hit", HIT_SCRIPT)
#: How a counter script's error starts when it builds a key the call did not declare.
UNDECLARED = "undeclared key "
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


def batch_keys(keys: SiteKeys, hits: Sequence[Hit], indexes: Sequence[int], limits: bool) -> list[str]:
    """KEYS of one site's ``hit.lua`` call: the totals key first (it routes the call),
    then every other key the script may build for these hits, each once. The minute and
    hour of the rate counters come from each hit's ``now`` in epoch milliseconds, as the
    script computes them. The keys shared by every hit of a day (calendar, statistics)
    are built once per day and reused."""
    site = keys.site
    declared = set(_site_keys(site))
    add = declared.add
    calendars: set[tuple[str, str, str]] = set()
    statistics: set[tuple[str, str]] = set()  # the profile hashes and the statistics log
    minutes: set[int] = set()  # the rate-limit hashes (a superset: one per minute and hour)
    hours: set[int] = set()
    for index in indexes:
        hit = hits[index]
        calendars.add((hit.day, hit.month, hit.hour))
        kind = hit.kind
        if hit.dimensions and kind is Kind.PAGEVIEW:
            statistics.add((hit.day, hit.month))
        if limits:
            ms = int(hit.now * 1000)
            minutes.add(ms // 60000)
            hours.add(ms // 3600000)
        if hit.bot:
            continue
        vd = hit.visitor_digest
        add(keys.visitor(vd))
        if hit.seq or hit.event_digest:
            add(keys.retry(vd))
        if kind is not Kind.HEARTBEAT:
            add(keys.page(hit.path_digest))
    declared.update(keys.rate_minute(minute) for minute in minutes)
    declared.update(keys.rate_hour(hour) for hour in hours)
    for day, month, hour in calendars:
        declared.update(_calendar_keys(site, day, month, hour))
    for day, month in statistics:
        declared.update(_profile_keys(site, day, month))
    if statistics:
        add(keys.stats_log)
    return [keys.totals, *declared]


# Pure and memoised (a day's keys are the same for every batch of that day); bounded.
@lru_cache(maxsize=256)
def _site_keys(site: str) -> tuple[str, ...]:
    keys = SiteKeys(site)
    return (keys.absent, *(keys.online(audience) for audience in AUDIENCES))


@lru_cache(maxsize=1024)
def _calendar_keys(site: str, day: str, month: str, hour: str) -> tuple[str, ...]:
    keys = SiteKeys(site)
    return keys.day(day), keys.month(month), keys.hour(hour), keys.visitors_day(day), keys.visitors_month(month)


@lru_cache(maxsize=1024)
def _profile_keys(site: str, day: str, month: str) -> tuple[str, ...]:
    keys = SiteKeys(site)
    return keys.profile_month(month), keys.profile_day(day)


class ScriptFailed(Exception):
    """The script answered with an error that is not a storage outage (a bug)."""


def as_bug(reply: object) -> object:
    """``reply``, or, when it is a script's refusal of a key its call did not declare,
    that refusal as the bug it is (answered 500, not 503; it does not trip the breaker)."""
    if isinstance(reply, ResponseError) and UNDECLARED in str(reply):
        log.error("counter script refused a key: %s", reply)
        return ScriptFailed(str(reply))
    return reply


class HitStore:
    def __init__(self, runner: ScriptRunner, settings: CounterSettings, script: Script = HIT) -> None:
        """``script``: ``hit.lua`` as shipped, or another version of it (``bench.script_ab``)."""
        self._runner = runner
        self._script = script
        self._limits = settings.rate_limits_enabled
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
        self._cleaned: dict[str, float] = {}
        #: Sites whose batches appended to their statistics log since the last take.
        self._logged: set[str] = set()

    def _cleanup_flag(self, site: str, hits: Sequence[Hit], indexes: Sequence[int]) -> str:
        latest = max(hits[index].now for index in indexes)
        if latest - self._cleaned.get(site, float("-inf")) < CLEANUP_EVERY_SECONDS:
            return "0"
        self._cleaned[site] = latest
        return "1"

    def take_logged_sites(self) -> set[str]:
        """The sites whose statistics log grew since the last call (for the folder)."""
        logged, self._logged = self._logged, set()
        return logged

    async def load_script(self) -> None:
        """Load ``hit.lua`` ahead of the first commit (NOSCRIPT is still handled later)."""
        await self._runner.load(self._script)

    async def commit(self, hits: Sequence[Hit]) -> list[CommitResult | BaseException]:
        """Record ``hits`` (any sites); one result per hit, in order.

        A site whose script failed gets the exception for each of its hits; other sites
        of the batch are still recorded and acknowledged.
        """
        by_site = indexes_by(hit.site for hit in hits)
        calls: list[Call] = []
        logs: dict[str, bool] = {}  # site -> its call may append to the statistics log
        for site, indexes in by_site.items():
            keys = SiteKeys(site)
            records = "\n".join([hits[index].record() for index in indexes])
            cleanup = self._cleanup_flag(site, hits, indexes)
            declared = batch_keys(keys, hits, indexes, self._limits)
            logs[site] = keys.stats_log in declared
            calls.append((declared, (keys.prefix, *self._head, cleanup, records, self._bounds)))
        replies = await self._runner.run_many(self._script, calls)
        results: list[CommitResult | BaseException] = [ScriptFailed("no reply")] * len(hits)
        for (site, indexes), reply in zip(by_site.items(), replies, strict=True):
            reply = as_bug(reply)  # a key missing from batch_keys
            if isinstance(reply, BaseException):
                for index in indexes:
                    results[index] = reply
                continue
            if not isinstance(reply, list) or len(reply) != len(indexes):
                log.error("hit script answered %r for %d hits", type(reply).__name__, len(indexes))
                continue
            for index, code in zip(indexes, reply, strict=True):
                results[index] = CODES[int(code)]
            if logs[site]:
                self._logged.add(site)
        return results
