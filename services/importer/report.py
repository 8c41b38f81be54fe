"""The import's report: what it read, what it wrote (or would write), what it could not date."""

from __future__ import annotations

from portal_pulse.importer.plan import Plan
from portal_pulse.importer.writer import Written

MAX_UNDATED_LINES = 40


def _span(keys: list[str]) -> str:
    return f"{len(keys)} ({keys[0]} .. {keys[-1]})" if keys else "0"


def render(plan: Plan, site: str, timezone: str, written: Written | None) -> str:
    lines = [f"NukeViet import from {plan.source} into site {site!r} ({timezone})", "", "Read:"]
    lines += [f"  {line}" for line in plan.read]
    lines += ["", "Wrote:" if written is not None else "Would write (dry run, nothing written):"]
    baseline = plan.baseline
    lines.append(f"  baseline: total {baseline.total:,}; months {_span(sorted(baseline.months))}; "
                 f"days {_span(sorted(baseline.days))}"
                 + ("" if written is None else ("" if written.baseline_changed else " (unchanged)")))
    figures = plan.figures
    lines.append(f"  /v1/stats from the import alone, as of {plan.as_of}: today {figures['today']:,}, this month "
                 f"{figures['this_month']:,}, last month {figures['last_month']:,}, total {figures['total']:,}")
    tops = ", ".join(f"{dimension} {len(entries)}" for dimension, entries in plan.tops.items())
    lines.append(f"  top entries (all-time visits): {tops}"
                 + ("" if written is None else f" (changed: {', '.join(written.tops_changed) or 'none'})"))
    views = sum(plan.pages.values())
    lines.append(f"  per-path views: {len(plan.pages)} paths, {views:,} views"
                 + ("" if written is None else
                    f" ({written.pages_changed} pages changed, {written.pages_removed} no longer imported)"))
    visits = sum(u.visits for u in plan.undated)
    lines += ["", f"Could not date or place ({len(plan.undated)} rows, {visits:,} visits):"]
    reasons: dict[str, list[str]] = {}
    for undated in plan.undated:
        reasons.setdefault(undated.reason, []).append(f"{undated.row} {undated.visits:,}")
    for reason, rows in list(reasons.items())[:MAX_UNDATED_LINES]:
        lines.append(f"  {', '.join(rows[:20])}{' ...' if len(rows) > 20 else ''}: {reason}")
    if not plan.undated:
        lines.append("  nothing")
    lines += ["", "Notes:"] + [f"  {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"
