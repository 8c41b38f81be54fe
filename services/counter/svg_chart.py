"""Charts as server-rendered SVG: bars for visits, a line for pageviews (when given).
No script and no style attributes (the page's CSP allows neither): classes only, styled
by ``stats.css``. Every label is escaped; each bar carries a ``<title>`` tooltip."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 60, 8, 14, 30


def _nice_max(value: int) -> int:
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def chart(
    title: str,
    labels: Sequence[str],
    visits: Sequence[int],
    pageviews: Sequence[int] | None,
    legend: tuple[str, str],
    number: Callable[[int], str] = "{:,}".format,
    axis: Callable[[int], str] = "{:,}".format,
    width: int = WIDTH,
) -> str:
    """An SVG bar chart (``aria-label`` = ``title``), ``width`` user units wide;
    ``number`` formats the figures in the tooltips, ``axis`` the (short) axis labels."""
    count = max(len(labels), 1)
    top = _nice_max(max([*visits, *(pageviews or []), 0]))
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / count
    bar_w = max(slot * 0.7, 1.0)

    def y(value: int) -> float:
        return TOP + plot_h - plot_h * value / top

    kind = "chart narrow" if width < WIDTH else "chart"
    parts = [f'<svg class="{kind}" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(title)}">']
    for tick in range(5):
        value = top * tick // 4
        ty = y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 4}" y="{ty + 4:.1f}" text-anchor="end">'
                     f'{escape(axis(value))}</text>')
    every = max(1, round(count / 12))
    for index, label in enumerate(labels):
        x = LEFT + slot * index + (slot - bar_w) / 2
        value = visits[index]
        tip = f"{label}: {legend[0]} {number(value)}"
        if pageviews is not None:
            tip += f", {legend[1]} {number(pageviews[index])}"
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y(value):.1f}" width="{bar_w:.1f}" '
                     f'height="{max(y(0) - y(value), 0):.1f}"><title>{escape(tip)}</title></rect>')
        if index % every == 0:
            parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                         f'{escape(label)}</text>')
    if pageviews is not None and labels:
        points = " ".join(f"{LEFT + slot * i + slot / 2:.1f},{y(v):.1f}" for i, v in enumerate(pageviews))
        parts.append(f'<polyline class="line" points="{points}"/>')
    parts.append("</svg>")
    legend_html = f'<span class="key key-visits">{escape(legend[0])}</span>'
    if pageviews is not None:
        legend_html += f' <span class="key key-pageviews">{escape(legend[1])}</span>'
    return f'<figure><figcaption>{escape(title)} {legend_html}</figcaption>{"".join(parts)}</figure>'
