"""Saturating-load runs with wrk: each target side by side with the ceiling (and the
naive peer for hits), interleaved and repeated, with service and Redis CPU from /proc
and, after every counter run, the exactness check (Redis counts == wrk's 2xx)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import probes
from bench.procs import cpu_seconds, load_average, tree_cpu_seconds
from bench.stack import Server, Stack
from bench.wrk import WrkResult, run_wrk


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str
    path: str = "/"
    counted: bool = False  # every 2xx must be one visit and one pageview
    ids_file: Path | None = None


@dataclass(frozen=True)
class Run:
    scenario: str
    server: str
    repeat: int
    wrk: WrkResult
    service_cpu_s: float
    redis_cpu_s: float
    load: tuple[float, float, float]
    visits_delta: int | None = None
    pageviews_delta: int | None = None
    stats_delta: tuple[int, int] | None = None

    @property
    def cpu_ms_per_1k(self) -> float:
        return self.service_cpu_s / max(self.wrk.answered, 1) * 1e6

    @property
    def redis_cpu_ms_per_1k(self) -> float:
        return self.redis_cpu_s / max(self.wrk.answered, 1) * 1e6

    @property
    def wrk_cpu_ms_per_1k(self) -> float:
        return self.wrk.cpu_ms_per_1k

    @property
    def exact(self) -> bool | None:
        if self.visits_delta is None:
            return None
        ok = self.wrk.exact and self.visits_delta == self.wrk.s2xx and self.pageviews_delta == self.wrk.s2xx
        if self.stats_delta is not None:
            ok = ok and self.stats_delta == (self.wrk.s2xx, self.wrk.s2xx)
        return ok


Log = Callable[[str], None]


def measure(stack: Stack, server: Server, scenario: Scenario, seconds: float, connections: int, threads: int,
            repeat: int, check_counts: bool, stats_cache_seconds: float, log: Log) -> Run:
    client = stack.redis()
    try:
        before = probes.counter_totals(client) if check_counts else None
        stats_before = probes.stats_totals(server.url) if check_counts else None
        cpu0, rcpu0 = tree_cpu_seconds(server.child.pid), cpu_seconds(stack.valkey_pid())
        load = load_average()
        result = run_wrk(server.url, scenario.kind, seconds, connections, threads, scenario.ids_file, scenario.path)
        cpu1, rcpu1 = tree_cpu_seconds(server.child.pid), cpu_seconds(stack.valkey_pid())
        run = Run(scenario.name, server.name, repeat, result, cpu1 - cpu0, rcpu1 - rcpu0, load)
        if check_counts and before is not None and stats_before is not None:
            after = probes.counter_totals(client)
            time.sleep(stats_cache_seconds + 0.2)
            stats_after = probes.stats_totals(server.url)
            run = Run(scenario.name, server.name, repeat, result, cpu1 - cpu0, rcpu1 - rcpu0, load,
                      after[0] - before[0], after[1] - before[1],
                      (stats_after[0] - stats_before[0], stats_after[1] - stats_before[1]))
    finally:
        client.close()
    exact = "" if run.exact is None else f" exact={run.exact} (redis {run.visits_delta}/{run.pageviews_delta})"
    log(f"  {scenario.name:<16} {server.name:<8} #{repeat} {result.rate:>9,.0f} req/s  p50 {result.p50_ms:.2f} ms"
        f"  p99 {result.p99_ms:.2f} ms  2xx {result.s2xx} non2xx {result.non2xx}  cpu/1k {run.cpu_ms_per_1k:.0f} ms"
        f" (valkey {run.redis_cpu_ms_per_1k:.0f}, wrk {run.wrk_cpu_ms_per_1k:.0f})"
        f"  load {load[0]:.2f}{exact}")
    return run


def is_counter(name: str) -> bool:
    """The counter service in any of its runs (defaults, tuned, workers): counts checked."""
    return name.startswith("counter")


def compare(stack: Stack, scenario: Scenario, servers: Sequence[Server], seconds: float, connections: int,
            threads: int, repeats: int, stats_cache_seconds: float, log: Log) -> list[Run]:
    """Run every server ``repeats`` times, interleaved, so drift hits them all alike."""
    runs: list[Run] = []
    for repeat in range(1, repeats + 1):
        for server in servers:
            check = scenario.counted and is_counter(server.name)
            runs.append(measure(stack, server, scenario, seconds, connections, threads, repeat, check,
                                stats_cache_seconds, log))
    return runs
