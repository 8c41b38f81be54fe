"""Pure calendar arithmetic in a site's IANA zone: which day, month and hour a moment
belongs to. No I/O; the clock is a parameter. Days and months are separate records, so
a rollover needs no cron and wipes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class CalendarKeys:
    """The local calendar slots of one moment, e.g. ``2026-11-26``, ``2026-11``,
    ``2026-11-26T17+0700``. The hour carries its UTC offset so the repeated hour at the
    end of daylight saving time stays two separate records."""

    day: str
    month: str
    hour: str


def local_time(ts: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, zone)


def calendar_keys(ts: float, zone: ZoneInfo) -> CalendarKeys:
    minute = int(ts // 60)
    # Within 10 µs of the next minute, ``datetime`` may round the moment up into it.
    keys = _minute_keys(zone, minute) if ts - minute * 60 < 59.99999 else None
    return keys if keys is not None else keys_of(local_time(ts, zone))


@lru_cache(maxsize=256)
def _minute_keys(zone: ZoneInfo, minute: int) -> CalendarKeys | None:
    """The keys of a whole UTC minute, or None if they change within it.

    Pure and memoised: a hit needs no ``datetime`` at all within a minute. The keys at
    the minute's first and last microsecond must agree and the UTC offset must not
    change in between (at most one zone transition can fall in a minute); then, local
    time running forward, every moment of the minute has those keys, even in zones
    whose offsets are not whole minutes.
    """
    first = local_time(minute * 60, zone)
    last = local_time(minute * 60 + 59.999999, zone)
    keys = keys_of(first)
    if first.utcoffset() != last.utcoffset() or keys_of(last) != keys:
        return None
    return keys


def keys_of(local: datetime) -> CalendarKeys:
    return CalendarKeys(day=day_key(local.date()), month=month_key(local.year, local.month), hour=hour_key(local))


def day_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def hour_key(local: datetime) -> str:
    return f"{day_key(local.date())}T{local.hour:02d}{utc_offset(local, '')}"


def utc_offset(local: datetime, separator: str) -> str:
    """The UTC offset as ``strftime('%z')`` (separator ``''``) or ``isoformat`` (``':'``)
    writes it, seconds included when there are any, at a tenth of their cost."""
    offset = local.utcoffset()
    total = int(offset.total_seconds()) if offset is not None else 0
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}{separator}{minutes:02d}"
    return f"{text}{separator}{seconds:02d}" if seconds else text


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def last_month_key(ts: float, zone: ZoneInfo) -> str:
    local = local_time(ts, zone)
    return month_key(*previous_month(local.year, local.month))


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
