"""``GET /stats``: the statistics page a portal links from its counter block.

Server-rendered HTML: the five figures, SVG charts per hour (today), day (this month)
and month (this year, baseline included), the hour-of-day and weekday profile and the
top lists of the chosen period, and the imported legacy lists when there are any. The
period picker is a plain GET form: no script at all, so the page works under a strict
CSP (``default-src 'none'``; the stylesheet is ``/stats.css`` from this service)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from portal_pulse.core.errors import bad_request
from portal_pulse.core.settings import SiteSettings
from portal_pulse.counter.calendar_keys import local_time, next_month
from portal_pulse.counter.dimensions import DIMENSIONS
from portal_pulse.counter.handlers import STATIC
from portal_pulse.counter.page_text import LANGS, TEXT, compact_format, number_format
from portal_pulse.counter.ranges import DateRange
from portal_pulse.counter.series import Unit
from portal_pulse.counter.state import CLOCK, METRICS, STATS
from portal_pulse.counter.stats_handlers import profile_for, readable_site, requested_range, series_for, tops_for
from portal_pulse.counter.svg_chart import chart

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "private, max-age=1",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
FIGURES = ("online", "today", "this_month", "last_month", "total")
TOP_LIMIT = 10


def _month_end(day: date) -> date:
    year, month = next_month(day.year, day.month)
    return date(year, month, 1) - timedelta(days=1)


class Page:
    """One rendering: the language, the site and the query the links must keep."""

    def __init__(self, site: SiteSettings, lang: str, token: str | None, today: date) -> None:
        self.site = site
        self.lang = lang
        self.t = TEXT[lang]
        self.n = number_format(lang)
        self.short = compact_format(lang)
        self.token = token
        self.today = today

    def query(self, **params: str) -> str:
        query = {"site": self.site.name, "lang": self.lang, **params}
        if self.token:
            query["token"] = self.token
        return urlencode(query)

    def link(self, **params: str) -> str:
        return escape(f"?{self.query(**params)}")

    def presets(self) -> list[tuple[str, DateRange]]:
        first = self.today.replace(day=1)
        previous_end = first - timedelta(days=1)
        return [
            ("preset_today", DateRange(self.today, self.today)),
            ("preset_month", DateRange(first, self.today)),
            ("preset_last_month", DateRange(previous_end.replace(day=1), previous_end)),
            ("preset_year", DateRange(self.today.replace(month=1, day=1), self.today)),
        ]

    def figures(self, stats: dict[str, Any]) -> str:
        items = "".join(f'<div class="figure"><dt>{escape(self.t[name])}</dt>'
                        f'<dd data-field="{name}">{self.n(int(stats[name]))}</dd></div>' for name in FIGURES)
        return (f'<section aria-labelledby="h-figures"><h2 id="h-figures">{self.t["figures"]}</h2>'
                f'<dl>{items}</dl></section>')

    def series_chart(self, title: str, series: dict[str, Any], label: slice) -> str:
        found = series["buckets"]
        return chart(title, [b["start"][label] for b in found], [b["visits"] for b in found],
                     [b["pageviews"] for b in found], (self.t["visits"], self.t["pageviews"]), self.n, self.short)

    def profile(self, document: dict[str, Any]) -> str:
        hours = chart(self.t["hour_of_day"], [f"{h['hour']:02d}" for h in document["hours"]],
                      [h["visits"] for h in document["hours"]], None, (self.t["visits"], ""), self.n, self.short)
        days = chart(self.t["weekday"], self.t["weekdays"].split(), [d["visits"] for d in document["weekdays"]],
                     None, (self.t["visits"], ""), self.n, self.short, width=360)
        return (f'<section aria-labelledby="h-profile"><h2 id="h-profile">{self.t["profile"]}</h2>'
                f'<div class="pair">{hours}{days}</div></section>')

    def key_label(self, dimension: str, key: str) -> str:
        return self.t.get(key, key) if dimension == "devices" else key

    def table(self, dimension: str, document: dict[str, Any], legacy: bool, period: DateRange | None) -> str:
        t = self.t
        head = f'<h3 id="h-{dimension}{"-legacy" if legacy else ""}">{escape(t[dimension])}</h3>'
        rows = document["rows"]
        csv = ""
        if period is not None:
            span = {"from": period.first.isoformat(), "to": period.last.isoformat()}
            href = escape(f"/v1/stats/top.csv?{self.query(dimension=dimension, limit='1000', **span)}")
            label = f'{t["csv"]} ({t[dimension]})'
            csv = f' <a class="csv" href="{href}" aria-label="{escape(label)}">{t["csv"]}</a>'
        if not rows:
            return f'<div class="top" data-dimension="{dimension}">{head}<p class="empty">{t["empty"]}</p></div>'
        measure = t["hits"] if dimension == "bots" and not legacy else t["col_pageviews"]
        columns = f'<th scope="col">{t["key"]}</th><th scope="col" class="num">{t["col_visits"]}</th>'
        if not legacy:
            columns += f'<th scope="col" class="num">{measure}</th>'
        body = []
        for row in rows:
            cells = (f'<td class="key" data-key="{escape(row["key"])}">{escape(self.key_label(dimension, row["key"]))}'
                     f'</td><td class="num" data-visits="{row["visits"]}">{self.n(row["visits"])}</td>')
            if not legacy:
                cells += f'<td class="num" data-pageviews="{row["pageviews"]}">{self.n(row["pageviews"])}</td>'
            body.append(f"<tr>{cells}</tr>")
        return (f'<div class="top" data-dimension="{dimension}">{head}{csv}<table>'
                f'<thead><tr>{columns}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')

    def picker(self, period: DateRange) -> str:
        t = self.t
        hidden = f'<input type="hidden" name="site" value="{escape(self.site.name)}">'
        hidden += f'<input type="hidden" name="lang" value="{self.lang}">'
        if self.token:
            hidden += f'<input type="hidden" name="token" value="{escape(self.token)}">'
        showing = t["showing"].format(first=period.first.isoformat(), last=period.last.isoformat())
        links = []
        for name, preset in self.presets():
            href = self.link(**{"from": preset.first.isoformat(), "to": preset.last.isoformat()})
            current = ' aria-current="true"' if preset == period else ""
            links.append(f'<a class="preset" href="{href}"{current}>{t[name]}</a>')
        presets = " ".join(links)
        return (f'<form class="picker" method="get" action="/stats" aria-labelledby="h-period">'
                f'<h2 id="h-period">{t["period"]}</h2>{hidden}'
                f'<label>{t["from"]} <input type="date" name="from" value="{period.first.isoformat()}"></label>'
                f'<label>{t["to"]} <input type="date" name="to" value="{period.last.isoformat()}"></label>'
                f'<button type="submit">{t["show"]}</button><p class="presets">{presets}</p>'
                f'<p class="showing">{escape(showing)}</p></form>')


def parse_lang(text: str | None) -> str:
    if text is None:
        return "vi"
    if text not in LANGS:
        raise bad_request("lang: expected vi or en", "invalid_query")
    return text


async def get_stats_page(request: web.Request) -> web.Response:
    app = request.app
    site = readable_site(request)
    lang = parse_lang(request.query.get("lang"))
    period = requested_range(request, site)
    now = local_time(app[CLOCK].now(), site.zone)
    today = now.date()
    page = Page(site, lang, request.query.get("token"), today)
    day_start = datetime.combine(today, time(0), tzinfo=site.zone)
    day_end = datetime.combine(today, time(23, 59, 59), tzinfo=site.zone)
    month_start = day_start.replace(day=1)
    month_end = datetime.combine(_month_end(today), time(23, 59, 59), tzinfo=site.zone)
    year_start = month_start.replace(month=1)
    year_end = datetime.combine(date(today.year, 12, 31), time(23, 59, 59), tzinfo=site.zone)
    with app[METRICS].counting_redis_errors("stats_page"):
        stats = await app[STATS].get(site)
    reads = await asyncio.gather(
        series_for(app, site, Unit.HOUR, day_start, day_end),
        series_for(app, site, Unit.DAY, month_start, month_end),
        series_for(app, site, Unit.MONTH, year_start, year_end),
        profile_for(app, site, period),
        tops_for(app, site, DIMENSIONS, period, TOP_LIMIT),
        tops_for(app, site, DIMENSIONS, None, TOP_LIMIT),
    )
    hours, days, months, profile, tops, legacy = reads
    t = page.t
    charts = (page.series_chart(t["by_hour"], hours, slice(11, 13)) + page.series_chart(t["by_day"], days, slice(8, 10))
              + page.series_chart(t["by_month"], months, slice(5, 7)))
    top_html = "".join(page.table(dim, tops[dim], False, period) for dim in DIMENSIONS)
    legacy_html = ""
    if any(doc["rows"] for doc in legacy.values()):
        legacy_html = (f'<section class="legacy" aria-labelledby="h-legacy"><h2 id="h-legacy">{t["legacy"]}</h2>'
                       f'<div class="tops">'
                       + "".join(page.table(dim, legacy[dim], True, None) for dim in DIMENSIONS if legacy[dim]["rows"])
                       + "</div></section>")
    other = "en" if lang == "vi" else "vi"
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{t["title"]} · {escape(site.name)}</title><link rel="stylesheet" href="/stats.css">'
        f'<link rel="icon" href="data:,"></head>'
        f'<body><header><h1>{t["title"]} · {escape(site.name)}</h1>'
        f'<a class="lang" lang="{other}" href="{Page(site, other, page.token, today).link()}">{other.upper()}</a>'
        f'</header><main>{page.figures(stats)}'
        f'<section aria-labelledby="h-charts"><h2 id="h-charts">{t["charts"]}</h2>{charts}</section>'
        f'{page.picker(period)}{page.profile(profile)}'
        f'<section aria-labelledby="h-top"><h2 id="h-top">{t["top"]}</h2><div class="tops">{top_html}</div></section>'
        f'{legacy_html}</main></body></html>'
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def get_stats_css(request: web.Request) -> web.Response:
    return web.Response(body=STATIC.joinpath("stats.css").read_bytes(), content_type="text/css", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300"})
