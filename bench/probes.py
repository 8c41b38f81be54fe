"""Small synchronous reads the benchmark makes between runs: counter totals straight
from Redis, the stats object over HTTP, Prometheus histograms from /metrics."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import redis

TOTALS_KEY = "pulse:{default}:totals"


def http_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def http_text(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def counter_totals(client: redis.Redis) -> tuple[int, int]:
    """(visits, pageviews) of the default site since the start, read directly."""
    visits, pageviews = client.hmget(TOTALS_KEY, ["visits", "pageviews"])
    return int(visits or 0), int(pageviews or 0)


def stats_totals(base_url: str) -> tuple[int, int]:
    """(total visits, total pageviews) as the counter's own /v1/stats shows them."""
    stats = http_json(f"{base_url}/v1/stats?site=default")
    return int(stats["total"]), int(stats["pageviews"]["total"])


def used_memory(client: redis.Redis) -> int:
    info = client.info("memory")
    return int(info["used_memory"])


_BUCKET = re.compile(r'^(?P<name>[a-z_]+)_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$')


def histogram(metrics_text: str, name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of one histogram, all label sets summed."""
    totals: dict[float, float] = {}
    for line in metrics_text.splitlines():
        match = _BUCKET.match(line)
        if not match or match.group("name") != name:
            continue
        le = re.search(r'le="([^"]+)"', match.group("labels"))
        if le is None:
            continue
        bound = float("inf") if le.group(1) == "+Inf" else float(le.group(1))
        totals[bound] = totals.get(bound, 0.0) + float(match.group("value"))
    return sorted(totals.items())


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The smallest bucket bound holding at least ``q`` of the observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    for bound, count in buckets:
        if count >= target:
            return bound
    return None
