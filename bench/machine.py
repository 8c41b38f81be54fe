"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

from portal_pulse.core.embedded import Allocator, jemalloc_library


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _mem_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _valkey_version() -> str:
    from portal_pulse.core.embedded import valkey_binary

    try:
        out = subprocess.run([str(valkey_binary()), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip().split(" v=")[1].split()[0] if " v=" in out.stdout else out.stdout.strip()
    except (OSError, IndexError):
        return "unknown"


def _wrk_version() -> str:
    out = subprocess.run(["/usr/bin/wrk", "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "unknown"


def _allocator(allocator: Allocator) -> str:
    library = jemalloc_library() if allocator == "jemalloc" else None
    return f"jemalloc ({library}, preloaded)" if library else "libc (as built)"


def describe(allocator: Allocator = "jemalloc") -> dict[str, str]:
    """The machine and versions; ``allocator``: the one asked of the embedded Valkey."""
    return {
        "nproc": str(os.cpu_count()),
        "cpu": _lscpu_model(),
        "memory": _mem_total(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "uvloop": version("uvloop"),
        "aiohttp": version("aiohttp"),
        "redis-py": version("redis"),
        "hiredis": version("hiredis"),
        "valkey": _valkey_version(),
        "valkey allocator": _allocator(allocator),
        "wrk": _wrk_version(),
    }
