"""Drive load with wrk (another process) through ``lua/bench.lua`` and parse its result."""

from __future__ import annotations

import json
import resource
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = "/usr/bin/wrk"
SCRIPT = Path(__file__).resolve().parent / "lua" / "bench.lua"
GRACE_SECONDS = 3


@dataclass(frozen=True)
class WrkResult:
    kind: str
    connections: int
    sent: int
    answered: int
    s2xx: int
    non2xx: int
    fillers: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    run_id: str
    cpu_s: float = 0.0  # wrk's own utime + stime over the whole run

    @property
    def cpu_ms_per_1k(self) -> float:
        return self.cpu_s / max(self.answered, 1) * 1e6

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def exact(self) -> bool:
        """Every measured request got its answer before wrk exited."""
        return self.sent == self.answered and self.socket_errors == 0


def run_wrk(url: str, kind: str, seconds: float, connections: int, threads: int = 1,
            ids_file: Path | None = None, path: str = "/", run_id: str | None = None) -> WrkResult:
    run_id = run_id or secrets.token_hex(4)
    argv = [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{int(seconds) + GRACE_SECONDS}s", "--timeout", "5s",
        "-s", str(SCRIPT), url, "--", kind, str(seconds), run_id, str(ids_file) if ids_file else "-", path,
    ]
    before = _children_cpu()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + GRACE_SECONDS + 30, check=False)
    cpu_s = _children_cpu() - before
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result (rc {done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line[6:])
    elapsed = float(data["last"]) - float(data["first"])
    return WrkResult(
        kind=kind, connections=connections, sent=data["sent"], answered=data["answered"],
        s2xx=data["s2xx"], non2xx=data["s3xx"] + data["s4xx"] + data["s5xx"], fillers=data["fillers"],
        seconds=elapsed, p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"],
        run_id=run_id, cpu_s=cpu_s,
    )


def _children_cpu() -> float:
    """utime + stime of every child this process has waited for (wrk, once it is reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
