"""Fixtures of the reliability suite: a Valkey of the test's own (it may be killed or
paused) and the environment switches the fault tests use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.procs import Cluster, own_cluster, shared_cluster

#: Fault tests measure durability, not inflation limits: the load comes from one address.
NO_LIMITS = {"PULSE_COUNTER_RATE_LIMITS_ENABLED": "false"}


@pytest.fixture
def owned(tmp_path: Path) -> Iterator[Cluster]:
    """A Valkey with AOF + fsync always in tmp_path, owned by this test alone."""
    with own_cluster(tmp_path) as cluster:
        yield cluster


@pytest.fixture
def shared(tmp_path: Path, valkey_url: str) -> Iterator[Cluster]:
    """Service processes against the suite's (flushed) Valkey, for tests that break no Redis."""
    with shared_cluster(tmp_path, valkey_url) as cluster:
        yield cluster
