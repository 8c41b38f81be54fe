"""Imported legacy figures of a migrated portal. A PUT replaces the whole baseline, so
sending the same document twice is harmless (idempotent)."""

from __future__ import annotations

import re
from datetime import date

import msgspec
from redis.asyncio import Redis

from portal_pulse.core.errors import bad_request
from portal_pulse.counter.keys import BASELINE_DAY, BASELINE_MONTH, BASELINE_PAGEVIEWS_TOTAL, BASELINE_TOTAL, SiteKeys

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MAX_MONTHS = 1200
MAX_DAYS = 36600
#: Keeps sums far from the 64-bit limit of HINCRBY and exact in JavaScript numbers.
MAX_FIGURE = 10**15


class Baseline(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    total: int = 0
    pageviews_total: int = 0
    months: dict[str, int] = msgspec.field(default_factory=dict)
    days: dict[str, int] = msgspec.field(default_factory=dict)

    def validate(self) -> Baseline:
        for name, value in (("total", self.total), ("pageviews_total", self.pageviews_total)):
            if not 0 <= value <= MAX_FIGURE:
                raise bad_request(f"{name}: must be between 0 and {MAX_FIGURE}", "invalid_body")
        if len(self.months) > MAX_MONTHS:
            raise bad_request(f"months: at most {MAX_MONTHS} months", "invalid_body")
        for month, value in self.months.items():
            if not MONTH.match(month):
                raise bad_request(f"months: {month[:20]!r} is not a YYYY-MM month", "invalid_body")
            if not 0 <= value <= MAX_FIGURE:
                raise bad_request(f"months[{month}]: must be between 0 and {MAX_FIGURE}", "invalid_body")
        if len(self.days) > MAX_DAYS:
            raise bad_request(f"days: at most {MAX_DAYS} days", "invalid_body")
        for day, value in self.days.items():
            if not _is_day(day):
                raise bad_request(f"days: {day[:20]!r} is not a YYYY-MM-DD date", "invalid_body")
            if not 0 <= value <= MAX_FIGURE:
                raise bad_request(f"days[{day}]: must be between 0 and {MAX_FIGURE}", "invalid_body")
        return self


def _is_day(text: str) -> bool:
    if not DAY.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


BASELINE_DECODER = msgspec.json.Decoder(Baseline)


async def replace_baseline(client: Redis, site: str, baseline: Baseline) -> None:
    key = SiteKeys(site).baseline
    mapping: dict[str, int] = {BASELINE_TOTAL: baseline.total, BASELINE_PAGEVIEWS_TOTAL: baseline.pageviews_total}
    mapping.update({BASELINE_MONTH + month: value for month, value in baseline.months.items()})
    mapping.update({BASELINE_DAY + day: value for day, value in baseline.days.items()})
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        await pipe.execute()

