"""The dump reader on hand-written SQL in the shapes mysqldump, mariadb-dump and
phpMyAdmin write (the real mariadb-dump output is read in test_import_mariadb)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from portal_pulse.importer.dump_reader import read_dump
from portal_pulse.importer.errors import ImportFailure

CREATE = """CREATE TABLE `nv4_counter` (
  `c_type` varchar(100) NOT NULL,
  `c_val` varchar(100) NOT NULL,
  `last_update` int(11) NOT NULL DEFAULT 0,
  `c_count` int(11) unsigned NOT NULL DEFAULT 0,
  `vi_count` int(11) unsigned NOT NULL DEFAULT 0,
  UNIQUE KEY `c_type` (`c_type`,`c_val`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;
"""
WANTED = {"nv4_counter": ("c_type", "c_val", "c_count")}


def dump(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dump.sql"
    path.write_bytes(text.encode("utf-8"))
    return path


def test_extended_insert_on_one_line_with_escapes(tmp_path: Path) -> None:
    text = CREATE + (
        "INSERT INTO `nv4_counter` VALUES ('total','hits',1,28564413,1),('os','a\\'b\\\\c\\nd\\0',0,5,5),"
        "('browser','x''y (,);',0,7,7),('bot',_binary 'Zalo\\Z',0,2,2),('country',0x564E,0,NULL,0);\n")
    rows = read_dump(dump(tmp_path, text), WANTED).rows["nv4_counter"]
    assert rows == [("total", "hits", 28564413), ("os", "a'b\\c\nd\0", 5), ("browser", "x'y (,);", 7),
                    ("bot", "Zalo\x1a", 2), ("country", "VN", None)]


def test_single_row_inserts_and_column_lists(tmp_path: Path) -> None:
    text = CREATE + (
        "INSERT INTO `nv4_counter` VALUES ('total','hits',1,10,10);\n"
        "INSERT INTO `nv4_counter` (`c_count`, `c_type`, `c_val`, `last_update`, `vi_count`) "
        "VALUES (3,'day','01',0,3);\n"
        "REPLACE INTO `nv4_counter` VALUES ('day','02',0,4,4);\n")
    found = read_dump(dump(tmp_path, text), WANTED)
    assert found.rows["nv4_counter"] == [("total", "hits", 10), ("day", "01", 3), ("day", "02", 4)]
    assert found.columns["nv4_counter"] == ("c_type", "c_val", "last_update", "c_count", "vi_count")


def test_statements_over_many_lines_and_strings_with_line_breaks(tmp_path: Path) -> None:
    text = CREATE + (
        "INSERT INTO `nv4_counter` (`c_type`, `c_val`, `last_update`, `c_count`, `vi_count`) VALUES\n"
        "('total', 'hits', 1, 10, 10),\n"
        "('os', 'two\nlines;\n', 0, 5,\n 5)\n"
        ";\n")
    rows = read_dump(dump(tmp_path, text), WANTED).rows["nv4_counter"]
    assert rows == [("total", "hits", 10), ("os", "two\nlines;\n", 5)]


def test_nukeviet_backup_shape_gzipped(tmp_path: Path) -> None:
    """NukeViet's own backup (admin > database): CRLF, ", " at line ends, addslashes, raw line breaks, .sql.gz."""
    text = ("-- NUKEVIET 4.0\r\nDROP TABLE IF EXISTS `nv4_counter`;\r\n" + CREATE.replace("\n", "\r\n") +
            "\r\nINSERT INTO `nv4_counter` VALUES\r\n('total', 'hits', 1, 10, 10), \r\n"
            "('os', 'a\r\nb \\\"c\\\"', 0, 5, 5);\r\n")
    path = tmp_path / "backup.sql.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert read_dump(path, WANTED).rows["nv4_counter"] == [("total", "hits", 10), ("os", 'a\r\nb "c"', 5)]


def test_unquoted_column_names(tmp_path: Path) -> None:
    text = ("CREATE TABLE nv4_counter (\n  c_type varchar(100) NOT NULL,\n  c_val varchar(100) NOT NULL,\n"
            "  en_count int,\n  c_count int,\n  UNIQUE KEY c_type (c_type,c_val),\n  KEY x (c_count)\n);\n"
            "INSERT INTO nv4_counter VALUES ('total','hits',1,10);\n")
    found = read_dump(dump(tmp_path, text), WANTED)
    assert found.columns["nv4_counter"] == ("c_type", "c_val", "en_count", "c_count")
    assert found.rows["nv4_counter"] == [("total", "hits", 10)]


def test_other_tables_are_skipped_whatever_they_hold(tmp_path: Path) -> None:
    text = ("CREATE TABLE `nv4_news_detail` (\n  `bodyhtml` longtext\n);\n"
            "INSERT INTO `nv4_news_detail` VALUES ('<p>unbalanced ( and \\' quotes');\n" + CREATE +
            "INSERT INTO `nv4_counter` VALUES ('total','hits',1,10,10);\n")
    found = read_dump(dump(tmp_path, text), WANTED)
    assert found.all_tables == ("nv4_news_detail", "nv4_counter")
    assert found.rows == {"nv4_counter": [("total", "hits", 10)]}


@pytest.mark.parametrize(("text", "message"), [
    ("INSERT INTO `nv4_counter` VALUES ('total','hits',1,10,10);\n", "without its CREATE TABLE"),
    (CREATE + "INSERT INTO `nv4_counter` VALUES ('total','hits',1,10);\n", "4 values but the table has 5 columns"),
    (CREATE + CREATE, "created twice"),
    (CREATE + "INSERT INTO `nv4_counter` VALUES ('total','hits',1,10,10),\n", "cut off at the end"),
    (CREATE + "INSERT INTO `nv4_counter` VALUES ('total','hits',1,10,10) garbage;\n", "expected , or ;"),
    (CREATE + "INSERT INTO `nv4_counter` VALUES ('total','hits',1,NOW(),10);\n", "expected a value, found 'NOW"),
    (CREATE + "INSERT INTO `nv4_counter` VALUES ('total','hits' 1,10,10);\n", "expected , or \\), found '1,10"),
])
def test_broken_statements_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ImportFailure, match=message):
        read_dump(dump(tmp_path, text), WANTED)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFailure, match="No such file"):
        read_dump(tmp_path / "nope.sql", WANTED)


def test_a_broken_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.sql.gz"
    path.write_bytes(gzip.compress((CREATE * 50).encode())[:60])
    with pytest.raises(ImportFailure, match="cut.sql.gz"):
        read_dump(path, WANTED)
