"""Where a server's time goes under saturating load: py-spy samples the server process
while wrk drives it, and the samples are grouped by what the innermost Python frame
belongs to (the service's own code, aiohttp, redis-py, prometheus-client, the event
loop). Native code (uvloop, hiredis, msgspec, llhttp) has no Python frame of its own;
its time is charged to the Python frame that called it.

The raw samples (``py-spy record -f raw``: one folded stack and its count per line) are
kept next to the results, ready for a flame-graph tool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import REPO
from bench.stack import Server
from bench.throughput import Scenario
from bench.wrk import run_wrk

RATE_HZ = 250

#: (label, how a frame's file starts in py-spy's output), first match wins; the rest is "other".
CATEGORIES = (
    ("service code (portal_pulse/)", "(portal_pulse/"),
    ("aiohttp", "(aiohttp/"),
    ("redis-py", "(redis/"),
    ("prometheus-client", "(prometheus_client/"),
    ("event loop (asyncio, uvloop)", "(asyncio/"),
)
SERVICE_CODE = CATEGORIES[0][1]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("the profile part needs py-spy: .venv/bin/pip install -e '.[bench]' (make bench does)")
    return found


@dataclass
class Profile:
    target: str
    rate: float
    samples: int
    by_category: dict[str, float] = field(default_factory=dict)
    through_service_code: float = 0.0
    top_self: list[tuple[str, float]] = field(default_factory=list)
    raw_file: str = ""


def category(frame: str) -> str:
    for label, marker in CATEGORIES:
        if marker in frame:
            return label
    return "other"


def summarise(target: str, rate: float, raw: Path, top: int = 12) -> Profile:
    own: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    through_service = 0
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        groups[category(frames[-1])] += n
        if any(SERVICE_CODE in frame for frame in frames):
            through_service += n
    share = (lambda n: 100.0 * n / total) if total else (lambda n: 0.0)
    return Profile(
        target, rate, total,
        by_category={label: share(n) for label, n in groups.most_common()},
        through_service_code=share(through_service),
        top_self=[(frame, share(n)) for frame, n in own.most_common(top)],
        raw_file=str(raw.relative_to(REPO)) if raw.is_relative_to(REPO) else str(raw),
    )


def profile(server: Server, scenario: Scenario, label: str, seconds: float, connections: int, threads: int,
            out_dir: Path) -> Profile:
    """Drive ``server`` with wrk for ``seconds`` while py-spy samples it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / ("-".join(re.findall(r"[a-z0-9]+", label.lower())) + ".txt")
    spy = subprocess.Popen(
        [py_spy(), "record", "--rate", str(RATE_HZ), "--format", "raw", "--output", str(raw),
         "--pid", str(server.child.pid), "--duration", str(int(seconds) + 1), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    result = run_wrk(server.url, scenario.kind, seconds, connections, threads, scenario.ids_file, scenario.path)
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        raise RuntimeError(f"py-spy failed on {label} (rc {spy.returncode}): {err[-1000:]}")
    return summarise(label, result.rate, raw)


def render(profiles: list[Profile]) -> str:
    labels = [label for label, _ in CATEGORIES] + ["other"]
    head = "| where the samples' innermost Python frame is | " + " | ".join(p.target for p in profiles) + " |"
    lines = [head, "|---|" + "---:|" * len(profiles)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(f"{p.by_category.get(label, 0.0):.0f}%" for p in profiles) + " |")
    lines.append("| stacks through service code (inclusive) | "
                 + " | ".join(f"{p.through_service_code:.0f}%" for p in profiles) + " |")
    lines.append("| req/s while sampled, samples | "
                 + " | ".join(f"{p.rate:,.0f}, {p.samples:,}" for p in profiles) + " |")
    for p in profiles:
        lines += ["", f"Top frames by own samples, {p.target} (raw samples: `{p.raw_file}`):", ""]
        lines += [f"- {pct:.1f}% `{frame}`" for frame, pct in p.top_self]
    return "\n".join(lines)
