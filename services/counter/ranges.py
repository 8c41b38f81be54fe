"""Date ranges of the statistics reads, in a site's local calendar: parsing ``from`` and
``to`` (as ``/v1/stats/series`` does; default: this month so far) and covering a range
with as few records as possible: whole months by their month record, the rest by days.
Pure: the clock's local time is a parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from portal_pulse.core.errors import bad_request
from portal_pulse.counter.calendar_keys import day_key, month_key, next_month
from portal_pulse.counter.series import parse_moment


@dataclass(frozen=True)
class DateRange:
    first: date
    last: date

    def json(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


@dataclass(frozen=True)
class Cover:
    """The records that add up to a range: ``months`` (YYYY-MM) and ``days`` (YYYY-MM-DD)."""

    months: tuple[str, ...]
    days: tuple[date, ...]

    @property
    def size(self) -> int:
        return len(self.months) + len(self.days)


def parse_range(query_from: str | None, query_to: str | None, now: datetime, zone: ZoneInfo) -> DateRange:
    today = now.date()
    first = parse_moment(query_from, zone, "from", end=False).date() if query_from else None
    last = parse_moment(query_to, zone, "to", end=True).date() if query_to else None
    if first is None and last is None:
        first, last = today.replace(day=1), today
    elif first is None:
        assert last is not None
        first = last.replace(day=1)
    elif last is None:
        last = max(first, today)
    if first > last:
        raise bad_request("from: must not be after to", "invalid_query")
    return DateRange(first, last)


def _month_end(day: date) -> date:
    year, month = next_month(day.year, day.month)
    return date(year, month, 1) - timedelta(days=1)


def cover(period: DateRange, max_records: int) -> Cover:
    months: list[str] = []
    days: list[date] = []
    day = period.first
    while day <= period.last:
        end = _month_end(day)
        if day.day == 1 and end <= period.last:
            months.append(month_key(day.year, day.month))
            day = end + timedelta(days=1)
        else:
            days.append(day)
            day += timedelta(days=1)
        if len(months) + len(days) > max_records:
            raise bad_request(f"the range needs more than {max_records} records; choose a shorter one",
                              "too_many_buckets")
    return Cover(tuple(months), tuple(days))


def day_keys(found: Cover) -> list[str]:
    return [day_key(day) for day in found.days]
