"""The command line of the import: help, required source, MySQL URLs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal_pulse.cli import main
from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.mysql_reader import MysqlUrl


def test_help_names_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "portal_pulse.cli", "import", "nukeviet", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ("--mysql-url", "--dump", "--prefix", "--lang", "--site", "--redis-url", "--dry-run", "--force",
                   "--article-path"):
        assert option in result.stdout


@pytest.mark.parametrize("args", [[], ["--dump", "a.sql", "--mysql-url", "mysql://u@h/db"]])
def test_exactly_one_source_is_required(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "portal_pulse.cli", "import", "nukeviet", *args],
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


def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = tmp_path / "small.sql"
    dump.write_text("CREATE TABLE `nv4_counter` (\n  `c_type` varchar(100),\n  `c_val` varchar(100),\n"
                    "  `c_count` int\n);\nINSERT INTO `nv4_counter` VALUES ('total','hits',5);\n"
                    "CREATE TABLE `nv4_vi_referer_stats` (\n  `host` varchar(250),\n  `total` int\n);\n")
    assert main(["import", "nukeviet", "--dump", str(dump), "--redis-url", "redis://127.0.0.1:1/0"], env={}) == 1
    captured = capsys.readouterr()
    assert "Redis at redis://127.0.0.1:1/0" in captured.err and captured.out == ""
    assert main(["import", "nukeviet", "--dump", str(dump), "--redis-url", "redis://:hunter2@127.0.0.1:1/0"],
                env={}) == 1
    assert "redis://:***@127.0.0.1:1/0" in (err := capsys.readouterr().err) and "hunter2" not in err
    assert main(["import", "nukeviet", "--dump", str(dump), "--dry-run"], env={}) == 0  # no Redis needed
    assert "total 5;" in capsys.readouterr().out
