"""``GET /v1/badge.svg?site=&lang=``: the five figures as an SVG image, for pages that run
no script (in the spirit of NukeViet's counter image and GoatCounter's counter). The SVG
is built as text with every interpolated string XML-escaped; the figures come from the
same per-site stats cache as ``/v1/stats`` and are sent with the same Cache-Control."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

from portal_pulse.core.errors import bad_request
from portal_pulse.counter.handlers import STATS_HEADERS
from portal_pulse.counter.pipeline import parse_site
from portal_pulse.counter.state import METRICS, SETTINGS, STATS

LANGS = ("vi", "en")
FIELDS = ("online", "today", "this_month", "last_month", "total")
LABELS = {
    "vi": ("Đang truy cập", "Hôm nay", "Tháng hiện tại", "Tháng trước", "Tổng lượt truy cập"),
    "en": ("Online now", "Today", "This month", "Last month", "Total visits"),
}
TITLES = {"vi": "Thống kê truy cập", "en": "Visit statistics"}
SEPARATORS = {"vi": ".", "en": ","}
SVG_TYPE = "image/svg+xml"

WIDTH = 240
HEADER = 26
ROW = 21
ACCENT = "#9f1239"


def parse_lang(value: str | None) -> str:
    if value is None or value == "":
        return "vi"
    if value not in LANGS:
        raise bad_request("lang: expected vi or en", "invalid_query")
    return value


def grouped(value: int, lang: str) -> str:
    """``28564413`` as ``28.564.413`` (vi) or ``28,564,413`` (en)."""
    return f"{value:,}".replace(",", SEPARATORS[lang])


def render_badge(stats: dict[str, Any], lang: str) -> str:
    labels = LABELS[lang]
    title = TITLES[lang]
    height = HEADER + ROW * len(FIELDS) + 6
    figures = [grouped(int(stats.get(field, 0)), lang) for field in FIELDS]
    summary = "; ".join(f"{label}: {figure}" for label, figure in zip(labels, figures, strict=True))
    rows = []
    for index, (label, figure) in enumerate(zip(labels, figures, strict=True)):
        y = HEADER + ROW * index
        if index:
            rows.append(f'<path d="M10 {y}.5H{WIDTH - 10}" stroke="#e5e7eb"/>')
        baseline = y + 15
        rows.append(f'<text x="10" y="{baseline}">{escape(label)}</text>'
                    f'<text x="{WIDTH - 10}" y="{baseline}" text-anchor="end" font-weight="700" '
                    f'fill="#111827">{escape(figure)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label={quoteattr(f"{title}: {summary}")} '
        f'lang="{lang}">'
        f"<title>{escape(f'{title}: {summary}')}</title>"
        f'<rect x=".5" y=".5" width="{WIDTH - 1}" height="{height - 1}" rx="6" fill="#fff" stroke="#d1d5db"/>'
        f'<path d="M.5 6.5a6 6 0 0 1 6-6h{WIDTH - 13}a6 6 0 0 1 6 6V{HEADER}H.5z" fill="{ACCENT}"/>'
        f'<g font-family="system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif" font-size="12.5">'
        f'<text x="10" y="18" fill="#fff" font-weight="700">{escape(title)}</text>'
        f'<g fill="#374151">{"".join(rows)}</g></g></svg>'
    )


async def get_badge(request: web.Request) -> web.Response:
    app = request.app
    site = parse_site(app[SETTINGS], request.query.get("site"))
    lang = parse_lang(request.query.get("lang"))
    with app[METRICS].counting_redis_errors("stats"):
        stats = await app[STATS].get(site)
    return web.Response(text=render_badge(stats, lang), content_type=SVG_TYPE, charset="utf-8",
                        headers=STATS_HEADERS)
