"""Local calendar keys in a site's zone: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from portal_pulse.counter.calendar_keys import calendar_keys, last_month_key, next_month, previous_month

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


@pytest.mark.parametrize(
    ("before", "after", "day_before", "day_after"),
    [
        ("2026-11-26T23:59:59+07:00", "2026-11-27T00:00:00+07:00", "2026-11-26", "2026-11-27"),
        ("2026-11-30T23:59:59+07:00", "2026-12-01T00:00:01+07:00", "2026-11-30", "2026-12-01"),
        ("2026-12-31T23:59:59+07:00", "2027-01-01T00:00:01+07:00", "2026-12-31", "2027-01-01"),
    ],
)
def test_local_midnight_splits_days_in_ho_chi_minh(before: str, after: str, day_before: str, day_after: str) -> None:
    assert calendar_keys(ts(before), HCM).day == day_before
    assert calendar_keys(ts(after), HCM).day == day_after


def test_midnight_is_local_not_utc() -> None:
    # 16:59:59 UTC is 23:59:59 in Ho Chi Minh City and 17:59:59 in Berlin: same UTC day.
    moment = ts("2026-11-26T16:59:59+00:00")
    assert calendar_keys(moment, HCM).day == "2026-11-26"
    assert calendar_keys(moment + 2, HCM).day == "2026-11-27"
    assert calendar_keys(moment + 2, BERLIN).day == "2026-11-26"


def test_month_and_year_end() -> None:
    assert calendar_keys(ts("2026-12-31T23:59:59+07:00"), HCM).month == "2026-12"
    assert calendar_keys(ts("2027-01-01T00:00:00+07:00"), HCM).month == "2027-01"
    assert last_month_key(ts("2027-01-01T00:00:00+07:00"), HCM) == "2026-12"
    assert last_month_key(ts("2026-03-31T12:00:00+07:00"), HCM) == "2026-02"


def test_hour_keys_keep_the_repeated_dst_hour_apart() -> None:
    # Europe/Berlin leaves summer time on 2026-10-25: 02:00-03:00 happens twice.
    first = calendar_keys(ts("2026-10-25T00:30:00+00:00"), BERLIN)
    second = calendar_keys(ts("2026-10-25T01:30:00+00:00"), BERLIN)
    assert first.hour == "2026-10-25T02+0200"
    assert second.hour == "2026-10-25T02+0100"
    assert first.day == second.day == "2026-10-25"


def test_dst_spring_forward_in_new_york() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT; the local day still has one midnight.
    before = calendar_keys(ts("2026-03-08T06:59:59+00:00"), NEW_YORK)
    after = calendar_keys(ts("2026-03-08T07:00:00+00:00"), NEW_YORK)
    assert before.hour == "2026-03-08T01-0500"
    assert after.hour == "2026-03-08T03-0400"
    assert calendar_keys(ts("2026-03-09T03:59:59+00:00"), NEW_YORK).day == "2026-03-08"
    assert calendar_keys(ts("2026-03-09T04:00:00+00:00"), NEW_YORK).day == "2026-03-09"


def test_month_arithmetic() -> None:
    assert previous_month(2027, 1) == (2026, 12)
    assert next_month(2026, 12) == (2027, 1)
    assert previous_month(2026, 5) == (2026, 4)
