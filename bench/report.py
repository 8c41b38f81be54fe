"""Turn the runs into the markdown tables of docs/benchmarks.md (medians of repeats)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.throughput import Run


@dataclass
class Summary:
    scenario: str
    server: str
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_1k: float
    redis_cpu_ms_per_1k: float
    wrk_cpu_ms_per_1k: float
    exact: str
    loads: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)


def summarise(runs: Sequence[Run]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.scenario, run.server), []).append(run)
    out: list[Summary] = []
    for (scenario, server), group in groups.items():
        exact_flags = [r.exact for r in group if r.exact is not None]
        exact = "n/a" if not exact_flags else (
            f"yes ({len(exact_flags)}/{len(exact_flags)})" if all(exact_flags)
            else f"NO ({sum(1 for f in exact_flags if f)}/{len(exact_flags)})")
        out.append(Summary(
            scenario, server,
            rate=statistics.median(r.wrk.rate for r in group),
            p50_ms=statistics.median(r.wrk.p50_ms for r in group),
            p99_ms=statistics.median(r.wrk.p99_ms for r in group),
            cpu_ms_per_1k=statistics.median(r.cpu_ms_per_1k for r in group),
            redis_cpu_ms_per_1k=statistics.median(r.redis_cpu_ms_per_1k for r in group),
            wrk_cpu_ms_per_1k=statistics.median(r.wrk_cpu_ms_per_1k for r in group),
            exact=exact, loads=[r.load[0] for r in group], rates=[r.wrk.rate for r in group],
        ))
    return out


def busy(s: Summary) -> tuple[float, float, float]:
    """Cores kept busy during the measured phase by the server, Valkey and wrk (rate × CPU
    per request): a server near 1.0 is bound by its own single event loop."""
    return (s.rate * s.cpu_ms_per_1k / 1e6, s.rate * s.redis_cpu_ms_per_1k / 1e6,
            s.rate * s.wrk_cpu_ms_per_1k / 1e6)


def throughput_table(summaries: Sequence[Summary]) -> str:
    ceilings = {s.scenario: s for s in summaries if s.server == "ceiling"}
    limits = {s.scenario: s.rate for s in summaries if s.server == "minimal"}
    naives = {s.scenario: s.rate for s in summaries if s.server == "naive"}
    lines = [
        "| scenario | server | req/s (median) | runs (req/s) | × ceiling | × ceiling predicted by server CPU |"
        " × limit (minimal) | × naive | p50 ms | p99 ms | service CPU ms / 1k | Redis CPU ms / 1k |"
        " wrk CPU ms / 1k | cores busy: server / Valkey / wrk | exact counts | load avg (1 min) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    baselines = ("ceiling", "minimal", "naive")
    for s in summaries:
        ceiling = ceilings.get(s.scenario)
        limit = limits.get(s.scenario)
        naive = naives.get(s.scenario)
        vs_ceiling = f"{s.rate / ceiling.rate:.2f}" if ceiling and s.server != "ceiling" else "1.00"
        predicted = (f"{ceiling.cpu_ms_per_1k / s.cpu_ms_per_1k:.2f}"
                     if ceiling and s.server != "ceiling" and s.cpu_ms_per_1k else "")
        vs_limit = f"{s.rate / limit:.2f}" if limit and s.server not in baselines else ""
        vs_naive = f"{s.rate / naive:.1f}" if naive and s.server not in baselines else ""
        lines.append(
            f"| {s.scenario} | {s.server} | {s.rate:,.0f} | {', '.join(f'{r:,.0f}' for r in s.rates)} |"
            f" {vs_ceiling} | {predicted} | {vs_limit} | {vs_naive} | {s.p50_ms:.2f} | {s.p99_ms:.2f} |"
            f" {s.cpu_ms_per_1k:.0f} |"
            f" {s.redis_cpu_ms_per_1k:.0f} | {s.wrk_cpu_ms_per_1k:.0f} | {' / '.join(f'{b:.2f}' for b in busy(s))} |"
            f" {s.exact} | {', '.join(f'{v:.2f}' for v in s.loads)} |"
        )
    return "\n".join(lines)


def kv_table(rows: Sequence[tuple[str, Any]], head: tuple[str, str] = ("what", "value")) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines.extend(f"| {k} | {v} |" for k, v in rows)
    return "\n".join(lines)
