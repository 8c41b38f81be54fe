"""A slot moved from one master to another while the services use it (issue 10), both
ways ``EmbeddedCluster.move_slot`` knows: Valkey 9's atomic ``CLUSTER MIGRATESLOTS``
and the classic ``SETSLOT IMPORTING/MIGRATING`` + ``MIGRATE`` + ``SETSLOT NODE``.

Each test moves the slot back, so the session's cluster keeps its slot ranges (other
tests place sites on masters by range)."""

from __future__ import annotations

import pytest
import redis
from redis.crc import key_slot

from services.core.embedded_cluster import EmbeddedCluster, MoveWay

pytestmark = pytest.mark.slow

WAYS: list[MoveWay] = ["atomic", "classic"]


@pytest.mark.parametrize("way", WAYS)
def test_move_slot_moves_every_key_and_the_routing(valkey_cluster: EmbeddedCluster, way: MoveWay) -> None:
    valkey_cluster.flush()
    first = valkey_cluster.nodes[0]
    client = redis.RedisCluster(host=first.host, port=first.port)
    try:
        for i in range(120):
            client.set(f"{{moving}}:{i}", i)
        client.set("{elsewhere}", "x")
        slot = key_slot(b"{moving}")
        source = valkey_cluster.master_of_slot(slot)
        batches: list[int] = []
        target = valkey_cluster.move_slot(slot, way=way, batch=50, between_batches=lambda: batches.append(1))
        assert target.port != source.port
        assert valkey_cluster.master_of_slot(slot).port == target.port
        with redis.Redis(host=target.host, port=target.port) as node:
            assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 120
        with redis.Redis(host=source.host, port=source.port) as node:
            assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert len(batches) == (3 if way == "classic" else 0)
        assert [client.get(f"{{moving}}:{i}") for i in (0, 119)] == [b"0", b"119"]
        assert valkey_cluster.move_slot(slot, source, way=way).port == source.port
        assert client.get("{moving}:7") == b"7"
        assert client.get("{elsewhere}") == b"x"
    finally:
        client.close()
