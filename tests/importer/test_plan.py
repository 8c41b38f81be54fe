"""Dating NukeViet's rows (pure): months of c_time/last's year up to its month, days of its
month up to its day, in the site's zone; "now" only picks the figures /v1/stats shows."""

from __future__ import annotations

from datetime import datetime

import pytest

from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.nukeviet_schema import Article, CounterRow, LegacyData
from portal_pulse.importer.plan import Plan, check_article_path, make_plan
from tests.importer.nukeviet_portal import ZONE, Portal


def legacy(portal: Portal, drop: tuple[str, ...] = ()) -> LegacyData:
    rows = [CounterRow(t, v, n) for t, v, n in portal.counter_rows() if f"{t}/{v}" not in drop]
    articles = [Article(i, c, a, h) for i, c, a, _, h in portal.articles]
    return LegacyData("test", rows, {"www.google.com.vn": 10, "": 3, "zero.test": 0}, articles,
                      {1: "thoi-su", 2: "kinh-te", 3: "the-thao"}, ("vi", "en"))


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).timestamp()


def plan_for(portal: Portal, now: float, template: str | None = None) -> Plan:
    return make_plan(legacy(portal), ZONE, now, template)


def undated_rows(plan: Plan) -> dict[str, str]:
    return {u.row: u.reason for u in plan.undated}


def test_months_and_days_are_dated_by_the_last_visit() -> None:
    plan = plan_for(Portal(), at(2026, 11, 26, 17, 0))
    assert sorted(plan.baseline.months) == [f"2026-{m:02d}" for m in range(1, 12)]
    assert plan.baseline.months["2026-10"] == 867_510
    assert sorted(plan.baseline.days) == [f"2026-11-{d:02d}" for d in range(1, 27)]
    assert sum(plan.baseline.days.values()) == 802_647
    assert plan.figures == {"today": 25_606, "this_month": 802_647, "last_month": 867_510, "total": 28_564_413}
    reasons = undated_rows(plan)
    assert "last year's and were zeroed" in reasons["month/Dec"]
    assert "zeroed at the new month" in reasons["day/27"]
    assert set(reasons) == {"month/Dec", "day/27", "day/28", "day/29", "day/30", "day/31"}


def test_later_month_rows_are_never_dated_even_when_not_zero() -> None:
    portal = Portal(stale_months={12: 777})
    plan = plan_for(portal, at(2026, 11, 26, 17, 0))
    assert "2026-12" not in plan.baseline.months and "2025-12" not in plan.baseline.months
    assert [(u.row, u.visits) for u in plan.undated if u.row.startswith("month")] == [("month/Dec", 777)]


def test_january_has_no_last_month() -> None:
    portal = Portal(last=datetime(2027, 1, 5, 9, 30, tzinfo=ZONE), months={1: 123_456}, today=20_000)
    plan = plan_for(portal, at(2027, 1, 5, 12, 0))
    assert plan.baseline.months == {"2027-01": 123_456}
    assert sorted(plan.baseline.days) == [f"2027-01-{d:02d}" for d in range(1, 6)]
    assert plan.figures == {"today": 20_000, "this_month": 123_456, "last_month": 0, "total": 28_564_413}
    assert any("last month (2026-12): NukeViet zeroed it at the first visit of 2027" in n for n in plan.notes)
    assert {r for r in undated_rows(plan) if r.startswith("month")} == {f"month/{m}" for m in (
        "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")}


def test_a_dump_taken_before_the_first_visit_of_a_new_month_holds_the_old_month() -> None:
    portal = Portal(last=datetime(2026, 11, 30, 23, 50, tzinfo=ZONE))
    plan = plan_for(portal, at(2026, 12, 1, 8, 0))
    assert max(plan.baseline.months) == "2026-11"
    assert sorted(plan.baseline.days) == [f"2026-11-{d:02d}" for d in range(1, 31)]
    assert plan.figures == {"today": 0, "this_month": 0, "last_month": 802_647, "total": 28_564_413}
    assert "day/31" in undated_rows(plan)


def test_a_dump_taken_before_the_first_visit_of_a_new_year_holds_the_old_year() -> None:
    months = {m: 700_000 + m for m in range(1, 13)}
    portal = Portal(last=datetime(2026, 12, 31, 23, 59, tzinfo=ZONE), months=months, today=9_000)
    plan = plan_for(portal, at(2027, 1, 1, 0, 30))
    assert sorted(plan.baseline.months) == [f"2026-{m:02d}" for m in range(1, 13)]
    assert max(plan.baseline.days) == "2026-12-31"
    assert plan.figures == {"today": 0, "this_month": 0, "last_month": 700_012, "total": 28_564_413}
    assert not [n for n in plan.notes if n.startswith("last month")]


def test_dating_uses_the_site_zone() -> None:
    # 17:30 UTC on 30 November is 00:30 on 1 December in Ho Chi Minh City.
    portal = Portal(last=datetime(2026, 12, 1, 0, 30, tzinfo=ZONE), months={12: 5_000}, today=5_000)
    plan = plan_for(portal, at(2026, 12, 1, 1, 0))
    assert plan.baseline.months == {"2026-12": 5_000}
    assert plan.baseline.days == {"2026-12-01": 5_000}


def test_without_c_time_last_nothing_is_dated() -> None:
    plan = make_plan(legacy(Portal(), drop=("c_time/last",)), ZONE, at(2026, 11, 26), None)
    assert plan.baseline.months == {} and plan.baseline.days == {}
    assert plan.baseline.total == 28_564_413
    assert all("c_time/last is missing" in u.reason for u in plan.undated)
    assert len(plan.undated) == 12 + 31


def test_a_counter_without_total_hits_is_refused() -> None:
    with pytest.raises(ImportFailure, match="no total/hits row"):
        make_plan(legacy(Portal(), drop=("total/hits",)), ZONE, at(2026, 11, 26), None)


def test_top_entries() -> None:
    plan = plan_for(Portal(), at(2026, 11, 26, 17, 0))
    assert plan.tops["countries"]["unknown"] == 914_413 and "unkown" not in plan.tops["countries"]
    assert "FR" not in plan.tops["countries"] and "opera" not in plan.tops["browsers"]  # zero rows are no entries
    assert plan.tops["bots"] == {"Googlebot": 480_000, "bingbot": 120_000, "Baiduspider": 75_000}
    assert plan.tops["referrers"] == {"www.google.com.vn": 10}


def test_article_paths() -> None:
    template = "/news/{cat}/{alias}-{id}.html"
    plan = plan_for(Portal(), at(2026, 11, 26, 17, 0), template)
    assert plan.pages == Portal().article_views(template)
    assert undated_rows(plan)["article 6"] == "its category 9 is not in the categories table"
    shared = plan_for(Portal(), at(2026, 11, 26, 17, 0), "/all-news.html")
    assert shared.pages == {"/all-news.html": 154_321 + 98_765 + 77_001 + 12_002 + 4_444}
    assert any("share a path" in note for note in shared.notes)


@pytest.mark.parametrize(("template", "message"), [
    ("news/{alias}.html", "must start with /"),
    ("/news/{slug}.html", "unknown placeholder {slug}"),
    ("/news/{alias.html", "--article-path"),
])
def test_bad_article_paths(template: str, message: str) -> None:
    with pytest.raises(ImportFailure, match=message):
        check_article_path(template)
