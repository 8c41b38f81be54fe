"""The command line of the import: help, required source, MySQL URLs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.importer.errors import ImportFailure
from services.importer.mysql_reader import MysqlUrl


def test_help_names_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "services.cli", "import", "nukeviet", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--mysql-url", "--dump", "--prefix", "--lang", "--site", "--redis-url", "--dry-run", "--force",
                   "--article-path"):
        assert option in result.stdout


@pytest.mark.parametrize("args", [[], ["--dump", "a.sql", "--mysql-url", "mysql://u@h/db"]])
def test_exactly_one_source_is_required(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "services.cli", "import", "nukeviet", *args],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--mysql-url" in result.stderr


def test_mysql_urls() -> None:
    url = MysqlUrl.parse("mysql://portal:p%40ss@db.internal:3307/nuke_viet", {})
    assert (url.user, url.password, url.host, url.port, url.database) == ("portal", "p@ss", "db.internal", 3307,
                                                                          "nuke_viet")
    assert MysqlUrl.parse("mariadb://portal@localhost/nv", {"MYSQL_PWD": "from-env"}).password == "from-env"
    assert MysqlUrl.parse("mysql://root@localhost/nv?unix_socket=/run/mysqld/mysqld.sock", {}).unix_socket == (
        "/run/mysqld/mysqld.sock")
    assert "secret" not in MysqlUrl.parse("mysql://u:secret@h/db", {}).describe()
    for bad in ("postgres://u@h/db", "mysql://u@h/", "mysql://u@h:notaport/db"):
        with pytest.raises(ImportFailure, match="--mysql-url"):
            MysqlUrl.parse(bad, {})
