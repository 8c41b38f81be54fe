"""Pure: a NukeViet site's rows -> what to write, dated by NukeViet's lazy resets.

NukeViet zeroes its period rows on the first visit of a new period, and records the last
visit in ``c_time/last``. So, in the site's zone, with L = local ``c_time/last``:
- month rows of months up to L's month hold L's year; later months' rows are last year's
  and were zeroed at the new year (undatable);
- day rows up to L's day hold L's month; later days' rows were zeroed at the new month;
- a dump taken before the first visit of a new period still holds the old period, so
  dating never looks at "now"; "now" only says which dated figures /v1/stats will show.
Hour rows hold only L's day and day-of-week rows are never reset: neither is dated.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from portal_pulse.counter.baseline import Baseline
from portal_pulse.counter.calendar_keys import day_key, month_key, previous_month
from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.nukeviet_schema import LegacyData

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TOP_TYPES = {"browser": "browsers", "os": "os", "country": "countries", "bot": "bots"}
PLACEHOLDERS = frozenset({"cat", "alias", "id"})
COUNTRY_ALIASES = {"unkown": "unknown"}  # NukeViet's own spelling of the unknown country


@dataclass(frozen=True)
class Undated:
    row: str  # e.g. "month/Dec"
    visits: int
    reason: str


@dataclass
class Plan:
    """Everything an import writes, and what it read and could not date, for the report."""

    source: str
    total: int
    baseline: Baseline
    pages: dict[str, int]
    tops: dict[str, dict[str, int]]
    figures: dict[str, int]  # today, this_month, last_month, total as the import alone gives them
    last_visit: datetime | None
    as_of: str = ""  # the local moment the figures are for
    undated: list[Undated] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)


def check_article_path(template: str) -> str:
    if not template.startswith("/"):
        raise ImportFailure(f"--article-path: must start with /, got {template[:60]!r}")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ImportFailure(f"--article-path: {exc}") from exc
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        raise ImportFailure(f"--article-path: unknown placeholder {{{unknown[0]}}}; use {{cat}}, {{alias}}, {{id}}")
    return template


def make_plan(data: LegacyData, zone: ZoneInfo, now: float, article_path: str | None) -> Plan:
    rows: dict[tuple[str, str], int] = {}
    for row in data.counter:
        rows[(row.c_type, row.c_val)] = rows.get((row.c_type, row.c_val), 0) + row.count
    if ("total", "hits") not in rows:
        raise ImportFailure(f"{data.source}: the counter table has no total/hits row: not a NukeViet counter")
    total = rows[("total", "hits")]
    last_ts = rows.get(("c_time", "last"), 0)
    last = datetime.fromtimestamp(last_ts, zone) if last_ts > 0 else None
    plan = Plan(data.source, total, Baseline(total=total), {}, {}, {}, last)
    _read_summary(plan, data, rows, zone)
    if last is None:
        reason = "c_time/last is missing or 0, so the month and day rows cannot be dated"
        plan.undated += [Undated(f"{t}/{v}", n, reason) for (t, v), n in sorted(rows.items()) if t in ("month", "day")]
    else:
        _date_months(plan, rows, last)
        _date_days(plan, rows, last)
        if last.timestamp() > now + 60:
            plan.notes.append("c_time/last is after now: check the site's time zone and the clocks")
    _tops(plan, data, rows)
    if article_path is not None and data.articles is not None:
        _pages(plan, data, article_path)
    else:
        plan.notes.append("article views: not imported (give --article-path to map articles to their paths)")
    plan.notes.append("hour rows: not imported (they hold only the day of c_time/last)")
    plan.notes.append("dayofweek rows: not imported (NukeViet never resets them, so they cannot be dated)")
    plan.notes.append("year rows: not imported as such (the counter keeps months; the total carries them)")
    plan.baseline.validate()
    plan.figures = _figures(plan, zone, now)
    return plan


def _read_summary(plan: Plan, data: LegacyData, rows: dict[tuple[str, str], int], zone: ZoneInfo) -> None:
    kinds: dict[str, int] = {}
    for c_type, _ in rows:
        kinds[c_type] = kinds.get(c_type, 0) + 1
    plan.read.append(f"counter: {len(rows)} rows ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
                     f"languages: {', '.join(data.languages) or 'none'}")
    plan.read.append(f"total/hits: {plan.total:,}")
    for name in ("start", "last"):
        ts = rows.get(("c_time", name), 0)
        plan.read.append(f"c_time/{name}: " + (datetime.fromtimestamp(ts, zone).isoformat() if ts > 0 else "0"))
    years = sorted((v, n) for (t, v), n in rows.items() if t == "year")
    if years:
        plan.read.append("year rows: " + ", ".join(f"{v} {n:,}" for v, n in years))
    plan.read.append(f"referring hosts: {len(data.referers)}")
    if data.articles is not None:
        plan.read.append(f"articles: {len(data.articles)}; categories: {len(data.categories)}")


def _date_months(plan: Plan, rows: dict[tuple[str, str], int], last: datetime) -> None:
    for index, name in enumerate(MONTHS, start=1):
        visits = rows.get(("month", name))
        if visits is None:
            continue
        if index <= last.month:
            if visits:
                plan.baseline.months[month_key(last.year, index)] = visits
        else:
            plan.undated.append(Undated(f"month/{name}", visits, (
                f"month rows after the month of c_time/last ({month_key(last.year, last.month)}) are last year's "
                "and were zeroed at the new year")))


def _date_days(plan: Plan, rows: dict[tuple[str, str], int], last: datetime) -> None:
    for number in range(1, 32):
        visits = rows.get(("day", f"{number:02d}"))
        if visits is None:
            continue
        if number <= last.day:
            if visits:
                plan.baseline.days[day_key(last.date().replace(day=number))] = visits
        else:
            plan.undated.append(Undated(f"day/{number:02d}", visits, (
                f"day rows after the day of c_time/last ({day_key(last.date())}) are from an earlier month "
                "and were zeroed at the new month")))


def _tops(plan: Plan, data: LegacyData, rows: dict[tuple[str, str], int]) -> None:
    tops: dict[str, dict[str, int]] = {dimension: {} for dimension in ("referrers", *TOP_TYPES.values())}
    for (c_type, c_val), visits in rows.items():
        dimension = TOP_TYPES.get(c_type)
        if dimension and visits > 0:
            key = COUNTRY_ALIASES.get(c_val, c_val) if c_type == "country" else c_val
            tops[dimension][key] = tops[dimension].get(key, 0) + visits
    tops["referrers"] = {host: n for host, n in data.referers.items() if n > 0 and host}
    plan.tops = tops


def _pages(plan: Plan, data: LegacyData, template: str) -> None:
    assert data.articles is not None
    needs_cat = "{cat}" in template
    placed = 0
    for article in data.articles:
        if article.views <= 0:
            continue
        cat = data.categories.get(article.catid)
        if needs_cat and cat is None:
            plan.undated.append(Undated(f"article {article.id}", article.views,
                                        f"its category {article.catid} is not in the categories table"))
            continue
        path = template.format(cat=cat or "", alias=article.alias, id=article.id)
        plan.pages[path] = plan.pages.get(path, 0) + article.views
        placed += 1
    if placed > len(plan.pages):
        plan.notes.append(f"article views: {placed - len(plan.pages)} articles share a path with another; summed")


def _figures(plan: Plan, zone: ZoneInfo, now: float) -> dict[str, int]:
    local = datetime.fromtimestamp(now, zone)
    plan.as_of = local.isoformat(timespec="minutes")
    last_month = month_key(*previous_month(local.year, local.month))
    if plan.last_visit is not None and last_month < month_key(plan.last_visit.year, 1):
        plan.notes.append(f"last month ({last_month}): NukeViet zeroed it at the first visit of "
                          f"{plan.last_visit.year}, so the import has no figure for it")
    return {
        "today": plan.baseline.days.get(day_key(local.date()), 0),
        "this_month": plan.baseline.months.get(month_key(local.year, local.month), 0),
        "last_month": plan.baseline.months.get(last_month, 0),
        "total": plan.total,
    }
