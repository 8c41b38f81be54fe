"""A/B of two versions of the counter: ``python -m bench.ab --old REF [--new REF]``.

Both versions run at once against one Valkey (``appendfsync always``), each from its own
checkout (a git worktree of REF; ``.`` is the working tree), and are measured in
interleaved rounds, the side that goes first alternating, so the shared machine's drift
hits both alike. Each round gives each side an open-loop fixed-rate run (latency, and CPU
per hit at that rate) and a saturating wrk run (throughput, CPU per hit, the exactness
check). ``--old-env`` and
``--new-env`` set environment variables for one side, e.g. to compare two settings of
the same checkout. Both sides run with the defaults an operator runs (rate limits on, the
default access log), visitors from addresses of their own through the trusted proxy;
``--tuned`` turns the limits off and logs warnings only, on both sides. ``--stats`` adds
a saturating ``GET /v1/stats`` run to each round (the cached read every page footer
makes: no Valkey work, so it shows the HTTP layer's cost per request alone):

    python -m bench.ab --old HEAD~1
    python -m bench.ab --old HEAD~1 --stats --rounds 4
    python -m bench.ab --old . --old-env PULSE_COUNTER_COMMITS_IN_FLIGHT=4 --rounds 4

``--service session`` compares two versions of the session service instead: each round
gives each side a saturating status read (``GET /v1/sessions/{id}``) and activity touch
(``POST .../activity``) run over 1,000 sessions it created (no fixed-rate run):

    python -m bench.ab --service session --old HEAD~1 --rounds 4

``--aof`` first measures what each side writes to Valkey's append-only file per hit (a
fixed-rate run each, alone, with automatic rewrites paused): the volume that decides how
often Valkey rewrites the file, and a rewrite stalls every ``appendfsync always`` commit.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench import probes
from bench.fixedrate import run_fixed_rate
from bench.procs import REPO, free_port, install_stop_handlers, python_argv, tree_cpu_seconds
from bench.report import kv_table
from bench.sessions import created_sessions, write_ids
from bench.stack import SERVICE_TOKEN, Server, Stack, stack
from bench.throughput import Scenario, measure

HIT = Scenario("hit JSON POST", "hit", counted=True)
STATS = Scenario("stats GET", "get", "/v1/stats?site=default")


@dataclass(frozen=True)
class Side:
    name: str
    ref: str
    env: dict[str, str]
    server: Server
    #: The session service's sessions (its ids file): what its runs read and touch.
    ids_file: Path | None = None


@dataclass(frozen=True)
class Round:
    side: str
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_at_rate_ms_per_1k: float
    rate: float
    cpu_ms_per_1k: float
    redis_cpu_ms_per_1k: float
    exact: bool
    stats_rate: float | None = None
    stats_cpu_ms_per_1k: float | None = None


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """The working tree for ``.``, else a temporary detached worktree of ``ref``."""
    if ref == ".":
        yield REPO
        return
    path = Path(tempfile.mkdtemp(prefix="pulse-ab-"))
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(path), ref], cwd=REPO, check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False,
                       capture_output=True)


#: Sessions each side of ``--service session`` creates, reads and touches.
SESSIONS = 1000

#: The tuned settings of ``--tuned`` (settings both old and new code know).
TUNED = {"PULSE_COUNTER_RATE_LIMITS_ENABLED": "false", "PULSE_LOG_LEVEL": "WARNING"}


#: The import package's name, newest first: ``portal_pulse`` since 2026-12-02 (a symlink
#: to ``services/``), ``services`` before; an A/B may run one of each.
PACKAGES = ("portal_pulse", "services")


def package_of(tree: Path) -> str:
    return next(name for name in PACKAGES if (tree / name / "cli.py").is_file())


def start(st: Stack, name: str, ref: str, env: dict[str, str], tree: Path, service: str = "counter") -> Side:
    """``service`` of ``tree`` (its own package), on a free port, against ``st``'s Valkey;
    the session service with 1,000 sessions of its own created."""
    port = free_port()
    argv = python_argv("-m", f"{package_of(tree)}.cli", service, "--redis-url", st.redis_url, "--port", str(port))
    child = st.procs.start(f"{service}-{name}", argv, port=port, cwd=tree,
                           env={"PULSE_SECRET": "ab-" + secrets.token_hex(8), "PULSE_SERVICE_TOKEN": SERVICE_TOKEN,
                                **env})
    server = Server(service, child, port)
    if service != "session":
        return Side(name, ref, env, server)
    ids = created_sessions(server.url, SESSIONS)
    return Side(name, ref, env, server, write_ids(st.workdir / f"session-ids-{name}.txt", ids))


@dataclass(frozen=True)
class SessionRound:
    side: str
    status_rate: float
    status_cpu_ms_per_1k: float
    status_redis_cpu_ms_per_1k: float
    activity_rate: float
    activity_cpu_ms_per_1k: float
    activity_redis_cpu_ms_per_1k: float


def session_round(st: Stack, side: Side, seconds: float, connections: int, threads: int) -> SessionRound:
    status, activity = (
        measure(st, side.server, Scenario(name, kind, ids_file=side.ids_file), seconds, connections, threads, 1,
                False, 1.0, lambda _: None)
        for name, kind in (("session status GET", "status"), ("session activity POST", "activity"))
    )
    result = SessionRound(side.name, status.wrk.rate, status.cpu_ms_per_1k, status.redis_cpu_ms_per_1k,
                          activity.wrk.rate, activity.cpu_ms_per_1k, activity.redis_cpu_ms_per_1k)
    print(f"  {side.name}: status {result.status_rate:,.0f} req/s, {result.status_cpu_ms_per_1k:.0f} ms CPU/1k"
          f" (Valkey {result.status_redis_cpu_ms_per_1k:.0f}) | activity {result.activity_rate:,.0f} req/s,"
          f" {result.activity_cpu_ms_per_1k:.0f} ms CPU/1k (Valkey {result.activity_redis_cpu_ms_per_1k:.0f})",
          flush=True)
    return result


def one_round(st: Stack, side: Side, rate: float, seconds: float, connections: int, threads: int,
              stats: bool = False) -> Round:
    server = side.server
    before = tree_cpu_seconds(server.child.pid)
    fixed = run_fixed_rate(server.url, rate, seconds, secrets.token_hex(4))
    at_rate = (tree_cpu_seconds(server.child.pid) - before) / max(int(fixed["answered"]), 1) * 1e6
    run = measure(st, server, HIT, seconds, connections, threads, 1, True, 1.0, lambda _: None)
    read = measure(st, server, STATS, seconds, connections, threads, 1, False, 1.0, lambda _: None) if stats else None
    result = Round(side.name, fixed["p50_ms"], fixed["p90_ms"], fixed["p99_ms"], at_rate, run.wrk.rate,
                   run.cpu_ms_per_1k, run.redis_cpu_ms_per_1k, bool(run.exact),
                   read.wrk.rate if read else None, read.cpu_ms_per_1k if read else None)
    reads = f" | stats {read.wrk.rate:,.0f} req/s, {read.cpu_ms_per_1k:.1f} ms CPU/1k" if read else ""
    print(f"  {side.name}: {rate:,.0f}/s p50 {result.p50_ms:.2f} p90 {result.p90_ms:.2f} p99 {result.p99_ms:.2f} ms,"
          f" {at_rate:.0f} ms CPU/1k | saturated {result.rate:,.0f} req/s, {result.cpu_ms_per_1k:.0f} ms CPU/1k"
          f" (Valkey {result.redis_cpu_ms_per_1k:.0f}), exact {result.exact}{reads}", flush=True)
    return result


def aof_size(client: redis.Redis) -> int:
    return int(client.info("persistence")["aof_current_size"])


def aof_bytes_per_hit(st: Stack, side: Side, rate: float, seconds: float) -> float:
    """Bytes ``side`` adds to the append-only file per counted pageview, measured alone
    with automatic rewrites paused (a rewrite would shrink the file mid-run)."""
    client = st.redis()
    try:
        saved = str(client.config_get("auto-aof-rewrite-percentage")["auto-aof-rewrite-percentage"])
        client.config_set("auto-aof-rewrite-percentage", 0)
        try:
            while client.info("persistence").get("aof_rewrite_in_progress"):
                time.sleep(0.1)
            before, views_before = aof_size(client), probes.counter_totals(client)[1]
            run_fixed_rate(side.server.url, rate, seconds, secrets.token_hex(4))
            time.sleep(1.5)  # the statistics fold of the run's last hits
            after, views_after = aof_size(client), probes.counter_totals(client)[1]
        finally:
            client.config_set("auto-aof-rewrite-percentage", saved)
    finally:
        client.close()
    per_hit = (after - before) / max(views_after - views_before, 1)
    print(f"  {side.name}: {per_hit:,.0f} AOF bytes per hit", flush=True)
    return per_hit


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """The median, then every value in round order."""
    return f"{fmt.format(statistics.median(values))} ({', '.join(fmt.format(v) for v in values)})"


def side_table(sides: list[Side], rounds: Sequence[Round | SessionRound],
               parts_of: Callable[[list[Any]], list[str]]) -> str:
    """One row per side: its ref and settings, then ``parts_of`` its rounds."""
    rows = []
    for side in sides:
        env = " ".join(f"{k}={v}" for k, v in side.env.items())
        parts = parts_of([r for r in rounds if r.side == side.name])
        rows.append((f"{side.name}: `{side.ref}` {env}".strip(), "; ".join(parts)))
    return kv_table(rows, ("side", "median (every round)"))


#: A session round's figures: label, field, format, unit.
SESSION_FIGURES = (
    ("status", "status_rate", "{:,.0f}", "req/s"), ("CPU", "status_cpu_ms_per_1k", "{:.0f}", "ms/1k"),
    ("Valkey", "status_redis_cpu_ms_per_1k", "{:.0f}", "ms/1k"), ("activity", "activity_rate", "{:,.0f}", "req/s"),
    ("CPU", "activity_cpu_ms_per_1k", "{:.0f}", "ms/1k"), ("Valkey", "activity_redis_cpu_ms_per_1k", "{:.0f}", "ms/1k"),
)


def session_summary(sides: list[Side], rounds: list[SessionRound]) -> str:
    return side_table(sides, rounds, lambda mine: [
        f"{label} {spread([getattr(r, name) for r in mine], fmt)} {unit}" for label, name, fmt, unit in SESSION_FIGURES
    ])


def summary(sides: list[Side], rounds: list[Round], rate: float) -> str:
    def parts_of(mine: list[Round]) -> list[str]:
        parts = [
            f"p50 {spread([r.p50_ms for r in mine])} ms",
            f"p99 {spread([r.p99_ms for r in mine])} ms",
            f"CPU at {rate:,.0f}/s {spread([r.cpu_at_rate_ms_per_1k for r in mine], '{:.0f}')} ms/1k",
            f"saturated {spread([r.rate for r in mine], '{:,.0f}')} req/s",
            f"CPU {spread([r.cpu_ms_per_1k for r in mine], '{:.0f}')} ms/1k",
            f"Valkey CPU {spread([r.redis_cpu_ms_per_1k for r in mine], '{:.0f}')} ms/1k",
            f"exact {sum(r.exact for r in mine)}/{len(mine)}",
        ]
        reads = [r for r in mine if r.stats_rate is not None and r.stats_cpu_ms_per_1k is not None]
        if reads:
            parts.append(f"stats {spread([r.stats_rate or 0.0 for r in reads], '{:,.0f}')} req/s, "
                         f"CPU {spread([r.stats_cpu_ms_per_1k or 0.0 for r in reads])} ms/1k")
        return parts

    return side_table(sides, rounds, parts_of)


def in_turn(sides: list[Side], number: int) -> list[Side]:
    """The sides in round ``number``'s order: old first in odd rounds, new first in even
    ones, so neither always runs on the Valkey the other has just written to."""
    return sides if number % 2 else sides[::-1]


def env_pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {value!r}")
        pairs[key] = val
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=("counter", "session"), default="counter")
    parser.add_argument("--old", default="HEAD~1", help="git ref of side A, or . for the working tree")
    parser.add_argument("--new", default=".", help="git ref of side B, or . for the working tree")
    parser.add_argument("--old-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--new-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rate", type=float, default=3200, help="open-loop hits per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tuned", action="store_true",
                        help="both sides with rate limits off and WARNING logs (default: the defaults)")
    parser.add_argument("--stats", action="store_true", help="also a saturating GET /v1/stats run per round")
    parser.add_argument("--aof", action="store_true", help="first, each side's AOF bytes per hit (alone)")
    args = parser.parse_args()
    install_stop_handlers()
    base = TUNED if args.tuned else {}
    rounds: list[Round] = []
    try:
        with checkout(args.old) as old_tree, checkout(args.new) as new_tree, stack() as st:
            sides = [start(st, "old", args.old, {**base, **env_pairs(args.old_env)}, old_tree, args.service),
                     start(st, "new", args.new, {**base, **env_pairs(args.new_env)}, new_tree, args.service)]
            if args.service == "session":
                session_rounds: list[SessionRound] = []
                for number in range(1, args.rounds + 1):
                    print(f"round {number}", flush=True)
                    session_rounds += [session_round(st, side, args.seconds, args.connections, args.threads)
                                       for side in in_turn(sides, number)]
                print(session_summary(sides, session_rounds))
                return 0
            if args.aof:
                print("AOF bytes per hit", flush=True)
                for side in sides:
                    aof_bytes_per_hit(st, side, args.rate, args.seconds)
            for number in range(1, args.rounds + 1):
                print(f"round {number}", flush=True)
                rounds += [one_round(st, side, args.rate, args.seconds, args.connections, args.threads, args.stats)
                           for side in in_turn(sides, number)]
            print(summary(sides, rounds, args.rate))
    except KeyboardInterrupt:
        print("interrupted: every server was stopped")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
