"""A/B of two versions of ``hit.lua`` inside Valkey: ``python -m bench.script_ab --old REF``.

Each version runs on its own embedded Valkey (no append-only file: the script's own
cost), and the same batches of benchmark-shaped hits go to each in turn, batch by batch,
the side that goes first alternating, so the machine's drift hits both alike. The hits
are those of ``bench.lua``'s JSON hit: a distinct visitor and address each, 1,000 paths,
statistics dimensions, rate limits on, sent through the working tree's ``HitStore`` (its
keys and arguments); only the script differs. Per side and round it reports the Valkey
process's CPU per hit (user + system, from ``/proc``: other processes on the core do
not count; it moves in clock ticks, so a batch's share is a sample, and thousands of
batches make the figure) and ``EVALSHA``'s microseconds per hit (``INFO commandstats``:
finer, but wall time inside Valkey, so it includes waiting for a core).

A faster script that counts differently is not faster: the run fails unless both sides
answered every hit with the same code and hold the same data afterwards, key by key.

    python -m bench.script_ab --old HEAD~1
    python -m bench.script_ab --old HEAD --new . --batch 6 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.procs import REPO
from bench.report import kv_table
from bench.statistics_cost import SITE, contexts
from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.scripts import Script, ScriptRunner
from portal_pulse.core.settings import CounterSettings, Settings
from portal_pulse.counter.calendar_keys import calendar_keys
from portal_pulse.counter.enrich import DimensionEnricher
from portal_pulse.counter.hit import Hit, Kind
from portal_pulse.counter.store import HIT, HitStore, counter_script
from portal_pulse.counter.visitor import path_digest, visitor_from_id

#: 2026-12-02 09:20 UTC: a day whose hits stay inside one local day.
START = 1796203200.0
PATHS = 1000


def script_at(ref: str) -> Script:
    """``hit.lua`` as the service builds it, from the working tree (``.``) or a git ref."""
    if ref == ".":
        return HIT

    def read(part: str) -> str:
        return subprocess.run(["git", "show", f"{ref}:services/counter/{part}"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout

    return Script("hit", counter_script("hit.lua", read))


def bench_hits(count: int, seed: int = 3) -> list[Hit]:
    """Hits shaped as the benchmark's JSON hit, 0.2 ms apart."""
    enricher = DimensionEnricher(Settings(sites=(SITE,)))
    hits = []
    for index, ctx in enumerate(contexts(count, random.Random(seed))):
        now = START + index * 0.0002
        ctx.parsed.path = f"/p/{index % PATHS}"
        cal = calendar_keys(now, SITE.zone)
        hits.append(Hit(
            SITE.name, Kind.PAGEVIEW, path_digest(ctx.parsed.path), visitor_from_id(SITE.name, f"v{index}"), False,
            False, now, cal.day, cal.month, cal.hour, "", hashlib.sha256(f"ip{index}".encode()).hexdigest()[:32],
            dimensions=enricher.field(ctx),
        ))
    return hits


def round_of(hits: list[Hit], number: int) -> list[Hit]:
    """The hits of round ``number``: other visitors and addresses, an hour later each
    round (the paths stay, so later rounds find their records, as a running site does)."""
    tag = f"{number:02x}"
    moved = []
    for hit in hits:
        now = hit.now + 3600 * number
        cal = calendar_keys(now, SITE.zone)
        moved.append(replace(hit, visitor_digest=tag + hit.visitor_digest[2:], ip_digest=tag + hit.ip_digest[2:],
                             now=now, day=cal.day, month=cal.month, hour=cal.hour))
    return moved


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    label: str
    server: EmbeddedServer
    pid: int
    client: Redis
    store: HitStore
    cpu_us: list[float] = field(default_factory=list)
    evalsha_us: list[float] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


async def snapshot(client: Redis) -> dict[bytes, Any]:
    """Every key's value, by type, and whether it expires (not when: that is time)."""
    found: dict[bytes, Any] = {}
    async for key in client.scan_iter(count=1000):
        named = await client.type(key)
        kind = named.decode() if isinstance(named, bytes) else named
        value: Any
        if kind == "hash":
            value = await client.hgetall(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        else:
            value = await client.get(key)
            if value.startswith(b"HYLL"):  # a HyperLogLog: its count (its bytes vary with encoding)
                value = await client.pfcount(key)
        found[key] = (kind, value, await client.pttl(key) > 0)
    return found


class Differ(Exception):
    """The two scripts did not count the same hits the same way."""


async def run(scripts: tuple[tuple[str, Script], tuple[str, Script]], batch: int, count: int, rounds: int,
              folder: Path) -> list[Side]:
    """Both ``(label, script)`` sides over the same rounds of hits; raises ``Differ`` if
    their answers or their data differ."""
    hits = bench_hits(count)
    sides: list[Side] = []
    try:
        for index, (label, script) in enumerate(scripts):
            server = EmbeddedServer(folder / str(index), appendonly=False).start()
            client = Redis(host=server.host, port=server.port)
            store = HitStore(ScriptRunner(client), CounterSettings(), script)
            assert server.process is not None
            sides.append(Side(label, server, server.process.pid, client, store))
            await store.load_script()
        for number in range(rounds):
            cpu = [0.0] * len(sides)
            for side in sides:
                await side.client.config_resetstat()
            batches = round_of(hits, number)
            for turn, first in enumerate(range(0, len(batches), batch)):
                for index in (0, 1) if turn % 2 == 0 else (1, 0):
                    side = sides[index]
                    before = process_cpu(side.pid)
                    results = await side.store.commit(batches[first:first + batch])
                    cpu[index] += process_cpu(side.pid) - before
                    side.codes += [repr(result) for result in results]
            for index, side in enumerate(sides):
                stats = await side.client.info("commandstats")
                side.cpu_us.append(cpu[index] * 1e6 / len(batches))
                side.evalsha_us.append(float(stats["cmdstat_evalsha"]["usec"]) / len(batches))
        if sides[0].codes != sides[1].codes:
            raise Differ("the two scripts answered the same hits with different codes")
        old_data, new_data = await snapshot(sides[0].client), await snapshot(sides[1].client)
        if old_data != new_data:
            differ = sorted(key for key in old_data.keys() | new_data.keys() if old_data.get(key) != new_data.get(key))
            raise Differ(f"the two scripts left different data: {len(differ)} keys, e.g. {differ[:3]}")
        return sides
    finally:
        for side in sides:
            await side.client.aclose()
            side.server.stop()


def report(sides: list[Side], batch: int, count: int) -> str:
    def cells(values: list[float]) -> str:
        return ", ".join(f"{value:.1f}" for value in values)

    rows = [(f"{side.label}: Valkey CPU µs per hit (rounds)", f"{sum(side.cpu_us) / len(side.cpu_us):.1f} "
             f"({cells(side.cpu_us)}); EVALSHA {sum(side.evalsha_us) / len(side.evalsha_us):.1f} "
             f"({cells(side.evalsha_us)})") for side in sides]
    rows.append(("checked", f"{count:,} hits a round in batches of {batch}: the same codes and the same data"))
    return kv_table(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="HEAD~1", help="git ref of side A, or . for the working tree")
    parser.add_argument("--new", default=".", help="git ref of side B, or . for the working tree")
    parser.add_argument("--batch", type=int, default=22, help="hits per script call (22: the saturated counter's)")
    parser.add_argument("--hits", type=int, default=6000, help="hits per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pulse-script-ab-") as folder:
        scripts = ((args.old, script_at(args.old)), (args.new, script_at(args.new)))
        try:
            sides = asyncio.run(run(scripts, args.batch, args.hits, args.rounds, Path(folder)))
        except Differ as exc:
            print(f"not comparable: {exc}")
            return 1
    print(report(sides, args.batch, args.hits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
