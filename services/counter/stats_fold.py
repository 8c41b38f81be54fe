"""The top lists, counted from each site's statistics log (``stats_fold.lua``).

``hit.lua`` appends a batch's statistics records to the site's log (``SiteKeys.stats_log``)
in the same atomic call that counts the hits, so they are in Redis before the hits are
acknowledged. Counting them into the bounded top lists costs a fixed amount per call
(a read and a write per day, month and dimension), so it is done for many batches at
once: ``StatisticsFolder.fold(site)`` reads the head of the log, declares the top-list
keys of the days and months it found, and calls the fold script, which counts the
entries in log order and trims them in the same call: each record is counted once,
exactly as one by one, whichever process folds.

A fold runs every ``counter.statistics_fold_seconds`` for the sites this process wrote
to (``run``, supervised), for every configured site at start (a log another process
left), and before every read of the top lists (``read_tops`` callers), so a reader
always sees every acknowledged hit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from functools import lru_cache

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from portal_pulse.core.redis_conn import STORAGE_ERRORS
from portal_pulse.core.scripts import Script, ScriptRunner
from portal_pulse.core.supervise import Beat
from portal_pulse.counter.dimensions import DIMENSIONS
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.store import HitStore, ScriptFailed, as_bug, counter_script

log = logging.getLogger(__name__)

FOLD = Script("stats_fold", counter_script("stats_fold.lua"))
#: Log entries (batches) read and folded per call.
ENTRIES_PER_FOLD = 64
#: Records per call at most (a fold of more entries is split): bounds one call's time,
#: for Valkey answers nothing else while a script runs. With the benchmark's 1,000
#: uniform paths (every record evicts in the day's and the month's page ranking) a call
#: of 1,024 records took ~25 ms and of 512 7-12 ms; 256 a call cost 15-20% more CPU per
#: record (docs/benchmarks.md, 2026-12-07).
RECORDS_PER_FOLD = 512
#: Calls in a row that fold nothing while entries are left before a fold gives up: the
#: entries it read were folded by another process and newer ones came (read again), or
#: its declared keys miss a day (a bug).
STALLS = 3


@lru_cache(maxsize=1024)
def top_list_keys(site: str, day: str, month: str) -> tuple[str, ...]:
    """Every top-list key of one day and its month, all dimensions."""
    keys = SiteKeys(site)
    found: list[str] = []
    for dimension in DIMENSIONS:
        found += keys.top_keys("day", day, dimension)
        found += keys.top_keys("month", month, dimension)
    return tuple(found)


def _head(entries: Iterable[bytes | str]) -> tuple[int, set[tuple[str, str]]]:
    """How many of ``entries`` one call folds, and the (day, month) pairs they hold."""
    taken = records = 0
    pairs: set[tuple[str, str]] = set()
    for entry in entries:
        text = entry.decode("utf-8", "replace") if isinstance(entry, bytes) else entry
        lines = text.split("\n")
        if taken and records + len(lines) > RECORDS_PER_FOLD:
            break
        for line in lines:
            fields = line.split("|", 3)
            if len(fields) == 4:
                pairs.add((fields[1], fields[2]))
        taken += 1
        records += len(lines)
    return taken, pairs


class StatisticsFolder:
    def __init__(self, client: Redis, runner: ScriptRunner, store: HitStore, sites: Iterable[str],
                 top_entries: int, every_seconds: float) -> None:
        self._client = client
        self._runner = runner
        self._store = store
        self._sites = tuple(sites)
        self._top_entries = str(top_entries)
        self._every = every_seconds
        self._locks = {site: asyncio.Lock() for site in self._sites}

    async def load_script(self) -> None:
        await self._runner.load(FOLD)

    async def fold(self, site: str) -> None:
        """Count every record of ``site``'s log so far into its top lists."""
        lock = self._locks.get(site)
        if lock is None:  # not a configured site: nothing writes its log
            return
        keys = SiteKeys(site)
        stalls = 0
        async with lock:
            # Only the entries in the log now (every hit acknowledged before this fold
            # began). A fold that chased the entries written while it ran never ended
            # under load, and a top-list read waits for this lock: under saturating hits
            # such reads took up to 2.2 s, now at most ~0.1 s (docs/benchmarks.md,
            # "Issue 16, 2026-12-07 (evening)"). Entries another process folded meanwhile
            # only make this fold take newer ones: it may stop late, never early.
            remaining = int(await self._client.llen(keys.stats_log))
            while remaining > 0:
                entries = await self._client.lrange(keys.stats_log, 0, min(remaining, ENTRIES_PER_FOLD) - 1)
                if not entries:
                    return
                taken, pairs = _head(entries)
                declared = [keys.stats_log, keys.absent]
                for day, month in sorted(pairs):
                    declared += top_list_keys(site, day, month)
                try:
                    folded, left = await self._runner.run(FOLD, declared, (keys.prefix, self._top_entries, taken))
                except ResponseError as exc:
                    failure = as_bug(exc)  # a key missing from top_list_keys
                    if isinstance(failure, ScriptFailed):
                        raise failure from exc
                    raise
                remaining -= int(folded)
                if int(left) == 0:
                    return
                stalls = 0 if int(folded) else stalls + 1
                if stalls >= STALLS:
                    raise ScriptFailed(f"the statistics fold of {site!r} made no progress ({int(left)} entries left)")

    async def fold_all(self, sites: Iterable[str]) -> None:
        for site in sites:
            await self.fold(site)

    async def run(self, beat: Beat) -> None:
        """Fold the sites this process wrote to, every ``every_seconds``; every
        configured site first. A storage error keeps the sites for the next turn."""
        pending: set[str] = set(self._sites)
        while True:
            pending |= self._store.take_logged_sites()
            try:
                await self.fold_all(sorted(pending))
            except STORAGE_ERRORS as exc:
                log.warning("statistics fold failed (%s); trying again in %.2fs", type(exc).__name__, self._every)
            else:
                pending.clear()
                beat()
            await asyncio.sleep(self._every)
