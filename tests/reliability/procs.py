"""Real service processes for the reliability suite.

Each service runs as ``python -m portal_pulse.cli counter|session --redis-url URL --port P``
with its settings in ``PULSE_*`` environment variables, its log (stdout and stderr) in a
file, and its own process group, so a test can SIGTERM or SIGKILL exactly that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import aiohttp

from portal_pulse.core.embedded import EmbeddedServer, free_port
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN

REPO_ROOT = Path(__file__).resolve().parents[2]
Kind = Literal["counter", "session"]

#: Sites every process of this suite serves (the same as ``make_settings``).
SITES: list[dict[str, object]] = [
    {"name": "default", "timezone": "Asia/Ho_Chi_Minh", "origins": ["http://portal.test"]},
    {"name": "news", "timezone": "Europe/Berlin", "origins": ["http://news.test"]},
]
PORTAL_ORIGIN = "http://portal.test"


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a service process: no inherited PULSE_* variables, known tokens,
    the two test sites, short Redis timeouts, and ``extra`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "PULSE_ADMIN_TOKEN": ADMIN_TOKEN,
            "PULSE_SERVICE_TOKEN": SERVICE_TOKEN,
            "PULSE_SECRET": "reliability-secret",
            "PULSE_SITES": json.dumps(SITES),
            "PULSE_SESSION_ORIGINS": json.dumps([PORTAL_ORIGIN]),
            "PULSE_LOG_LEVEL": "INFO",
            "PULSE_REDIS_COMMAND_TIMEOUT_SECONDS": "0.5",
            "PULSE_REDIS_CONNECT_TIMEOUT_SECONDS": "0.5",
        }
    )
    env.update(extra or {})
    return env


@dataclass
class ServiceProcess:
    """One service as a real subprocess on a free loopback port."""

    kind: Kind
    redis_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=service_env)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "portal_pulse.cli", self.kind, "--redis-url", self.redis_url,
                "--port", str(self.port)]

    def launch(self) -> None:
        """Spawn the process (without waiting for it to answer)."""
        if not self.port:
            self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start(self, timeout_seconds: float = 20.0) -> ServiceProcess:
        """Spawn and block until /healthz answers (for fixtures, before any load runs)."""
        self.launch()
        deadline = time.monotonic() + timeout_seconds
        while not self._healthy_sync():
            self._check_alive(deadline, timeout_seconds)
            time.sleep(0.05)
        return self

    async def astart(self, timeout_seconds: float = 20.0) -> ServiceProcess:
        """Spawn and wait until /healthz answers without blocking the event loop."""
        self.launch()
        deadline = time.monotonic() + timeout_seconds
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return self
                self._check_alive(deadline, timeout_seconds)
                await asyncio.sleep(0.05)

    def _healthy_sync(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1.0) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def _check_alive(self, deadline: float, timeout_seconds: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.kind} exited at start (rc {self.process.returncode}):\n{self.log()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{self.kind} not healthy in {timeout_seconds}s:\n{self.log()}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(sig)

    async def wait(self, timeout_seconds: float) -> int:
        """Wait for the process to exit; its return code (raises on timeout)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_seconds
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind} (pid {self.pid}) still running after {timeout_seconds}s")
            await asyncio.sleep(0.02)
        return self.process.returncode

    async def terminate(self, timeout_seconds: float = 15.0) -> int:
        self.signal(signal.SIGTERM)
        return await self.wait(timeout_seconds)

    async def kill(self) -> int:
        self.signal(signal.SIGKILL)
        return await self.wait(5.0)

    def stop(self) -> None:
        """Clean up whatever state the process is in (fixtures; blocks up to ~10 s)."""
        if self.process is not None and self.running():
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process is not None:
            self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


class Cluster:
    """A Redis-compatible server of this test's own (so it may kill or pause it) and the
    service processes running against it, torn down together."""

    def __init__(self, base: Path, *, appendonly: bool = True, redis_url: str | None = None) -> None:
        self.base = base
        self.redis = EmbeddedServer(base / "redis", appendonly=appendonly)
        self._url = redis_url
        self.services: list[ServiceProcess] = []

    @property
    def redis_url(self) -> str:
        return self._url or self.redis.url

    def process(self, kind: Kind, env: Mapping[str, str] | None = None, name: str | None = None) -> ServiceProcess:
        """A service process, not yet started."""
        label = name or f"{kind}-{len(self.services)}"
        proc = ServiceProcess(kind, self.redis_url, self.base / f"{label}.log", env=service_env(env))
        self.services.append(proc)
        return proc

    def service(self, kind: Kind, env: Mapping[str, str] | None = None, name: str | None = None) -> ServiceProcess:
        """A started service process (blocks until its /healthz answers)."""
        return self.process(kind, env, name).start()

    def close(self) -> None:
        for proc in reversed(self.services):
            proc.stop()
        if self._url is None:
            self.redis.stop()


@contextlib.contextmanager
def own_cluster(base: Path, *, appendonly: bool = True) -> Iterator[Cluster]:
    """A cluster with its own embedded Valkey (AOF, fsync always) in ``base``."""
    owned = Cluster(base, appendonly=appendonly)
    owned.redis.start()
    try:
        yield owned
    finally:
        owned.close()


@contextlib.contextmanager
def shared_cluster(base: Path, redis_url: str) -> Iterator[Cluster]:
    """Service processes against a server the suite owns but this test must not kill."""
    owned = Cluster(base, redis_url=redis_url)
    try:
        yield owned
    finally:
        owned.close()


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")
