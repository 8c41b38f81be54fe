"""Importer fixtures: one MariaDB per session, the counter app (from tests.counter)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.counter.conftest import start_counter
from tests.importer.mariadb_server import MariaDB

__all__ = ["start_counter"]


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    server = MariaDB(tmp_path_factory.mktemp("mariadb")).start()
    yield server
    server.stop()
