"""A MariaDB server of the suite's own: its own data directory, socket and free port on
127.0.0.1 (never the machine's server on 3306), started once per session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BINARIES = ("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump")


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's mariadb-server (scripts/system-deps.sh)")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class MariaDB:
    base: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def start(self) -> MariaDB:
        data = self.base / "data"
        subprocess.run([_binary("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=120)
        self.port = _free_port()
        with (self.base / "mariadbd.log").open("wb") as log:
            self.process = self._spawn(data, log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("mariadbd exited: " + (self.base / "error.log").read_text()[-2000:])
            if self.socket.exists() and self._answers():
                return self
            time.sleep(0.05)  # waiting for a process to start, not for time to pass
        raise RuntimeError("mariadbd did not start within 60 s")

    def _spawn(self, data: Path, log: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [_binary("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", "--user=root", f"--pid-file={self.base / 'pid'}",
             f"--tmpdir={self.base}", "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M",
             "--character-set-server=utf8mb4", f"--log-error={self.base / 'error.log'}"],
            stdout=log, stderr=subprocess.STDOUT)

    def _answers(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def client_args(self) -> list[str]:
        return ["--no-defaults", "--user=root", f"--socket={self.socket}", "--protocol=socket"]

    def sql(self, statements: str, database: str | None = None) -> None:
        command = [_binary("mariadb"), *self.client_args(), *([database] if database else [])]
        subprocess.run(command, input=statements.encode(), check=True, capture_output=True, timeout=60)

    def load(self, database: str, statements: str) -> None:
        """A fresh database holding ``statements``."""
        self.sql(f"DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}` CHARACTER SET utf8mb4;")
        self.sql(statements, database)

    def dump(self, database: str, target: Path, *options: str) -> Path:
        with target.open("wb") as out:
            subprocess.run([_binary("mariadb-dump"), *self.client_args(), *options, database],
                           stdout=out, check=True, timeout=60)
        return target

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
