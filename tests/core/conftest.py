"""Fixtures of the core tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portal_pulse.core.embedded import EmbeddedServer


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A Valkey of this test's own (it may be paused or given a replica)."""
    server = EmbeddedServer(tmp_path / "valkey", appendonly=False).start()
    yield server
    server.stop()
