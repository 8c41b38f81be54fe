"""The servers of one benchmark run: an embedded Valkey (appendonly, fsync as in
production) and each HTTP server as its own process on a free loopback port."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.procs import Child, Processes, free_port, free_port_run, python_argv
from portal_pulse.core.embedded import Allocator, EmbeddedServer

SERVICE_TOKEN = "bench-" + secrets.token_hex(16)
#: What a benchmark might tune: no inflation limits (all load from one address), warnings
#: only, no access log. The defaults run is what an operator runs and the README quotes.
TUNED_ENV = {"PULSE_COUNTER_RATE_LIMITS_ENABLED": "false", "PULSE_LOG_LEVEL": "WARNING", "PULSE_ACCESS_LOG": "off"}


@dataclass
class Server:
    """An HTTP server under test: its process and base URL."""

    name: str
    child: Child
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    procs: Processes
    valkey: EmbeddedServer
    workdir: Path

    @property
    def redis_url(self) -> str:
        return self.valkey.url

    def redis(self) -> redis.Redis:
        return redis.Redis(host=self.valkey.host, port=self.valkey.port, socket_timeout=30)

    def valkey_pid(self) -> int:
        assert self.valkey.process is not None
        return self.valkey.process.pid

    def flush(self) -> None:
        client = self.redis()
        try:
            client.flushall()
        finally:
            client.close()

    def fresh(self) -> None:
        """Empty the server and rewrite its append-only file, waiting for the rewrite: a
        part measured next meets neither the data nor an automatic rewrite (a fork, and
        stalled ``appendfsync always`` commits) of the parts before it."""
        client = self.redis()

        def wait_for_rewrites() -> None:
            while any(client.info("persistence").get(flag)
                      for flag in ("aof_rewrite_in_progress", "aof_rewrite_scheduled")):
                time.sleep(0.1)

        try:
            client.flushall()
            wait_for_rewrites()  # a rewrite already running refuses another
            client.bgrewriteaof()
            wait_for_rewrites()
        finally:
            client.close()

    def ceiling(self) -> Server:
        port = free_port()
        child = self.procs.start("ceiling", python_argv("-m", "bench.baselines", "ceiling", "--port", str(port)),
                                 port=port)
        return Server("ceiling", child, port)

    def naive(self) -> Server:
        port = free_port()
        argv = python_argv("-m", "bench.baselines", "naive", "--port", str(port), "--redis-url", self.redis_url)
        return Server("naive", self.procs.start("naive", argv, port=port), port)

    def minimal(self) -> Server:
        port = free_port()
        argv = python_argv("-m", "bench.baselines", "minimal", "--port", str(port), "--redis-url", self.redis_url)
        return Server("minimal", self.procs.start("minimal", argv, port=port), port)

    def service(self, which: str, extra_env: dict[str, str] | None = None, *, tuned: bool = False,
                workers: int = 1) -> Server:
        """``which`` with its defaults (named ``counter``), or ``tuned`` (``counter tuned``);
        ``workers`` > 1 runs that many processes on the port (``counter 2 workers``)."""
        port = free_port()
        env = {
            "PULSE_SERVICE_TOKEN": SERVICE_TOKEN,
            "PULSE_SECRET": "bench-" + secrets.token_hex(16),
            **(TUNED_ENV if tuned else {}),
            **(extra_env or {}),
        }
        argv = python_argv("-m", "portal_pulse.cli", which, "--redis-url", self.redis_url, "--port", str(port))
        name = which + (" tuned" if tuned else "")
        if workers > 1:
            argv += ["--workers", str(workers), "--metrics-port", str(free_port_run(workers))]
            name += f" {workers} workers"
        return Server(name, self.procs.start(name.replace(" ", "-"), argv, env=env, port=port), port)

    def stop(self, server: Server) -> None:
        self.procs.stop(server.child)


@contextmanager
def stack(fsync: str = "always", keep: bool = False, allocator: Allocator = "jemalloc") -> Iterator[Stack]:
    """Valkey plus a process table; everything is stopped on the way out, even on Ctrl+C.
    ``allocator``: the embedded server's (``EmbeddedServer.allocator``)."""
    workdir = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    procs = Processes(workdir / "logs")
    valkey = EmbeddedServer(data_dir=workdir / "valkey", port=free_port(), fsync=fsync, allocator=allocator)
    try:
        valkey.start()
        yield Stack(procs, valkey, workdir)
    finally:
        procs.stop_all()
        valkey.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
