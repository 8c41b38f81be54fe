"""Read the wanted tables out of a ``mysqldump``/``mariadb-dump`` file (phpMyAdmin's SQL
export and NukeViet's own database backup too; gzipped or not), streaming: only the
CREATE TABLE and INSERT statements of wanted tables are decoded, everything else is
skipped by its first bytes.

- Column order comes from each CREATE TABLE (a NukeViet counter table has one
  ``{lang}_count`` column per installed language), or from an INSERT's column list.
- Extended INSERTs (many tuples per statement, one line each in mysqldump) and single-row
  INSERTs; statements that span lines (mariadb-dump, phpMyAdmin, NukeViet's backup, which
  also leaves line breaks raw inside strings) are read on line by line until they end.
- Strings are unescaped as mysqldump escapes them (``\\0 \\' \\" \\b \\n \\r \\t \\Z \\\\``,
  and ``''``); ``_binary '...'``, ``0x...`` hex, ``NULL`` and numbers are understood.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.nukeviet_schema import Row, SourceTables, Value

CREATE = re.compile(rb"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?([^`\s(]+)`?\s*\(", re.I)
INSERT = re.compile(
    rb"^(?:INSERT|REPLACE)\s+(?:(?:IGNORE|DELAYED|LOW_PRIORITY|HIGH_PRIORITY)\s+)?INTO\s+`?([^`\s(]+)`?\s*", re.I)
COLUMN_LINE = re.compile(r"^\s*(?:`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_$]*))\s")
#: Lines of a CREATE TABLE that define no column (with --skip-quote-names nothing quotes the names).
NOT_A_COLUMN = frozenset({"PRIMARY", "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN",
                          "CHECK", "PERIOD"})
COLUMN_LIST = re.compile(r"\s*\(([^)]*)\)\s*")
VALUES_WORD = re.compile(r"\s*VALUES?\s*", re.I)
#: A value: a string (mysqldump's escapes, '' too, an optional charset introducer), hex, NULL or a number.
SCALAR = r"""(?:
      (?:_binary\s*|_utf8mb4\s*|_utf8\s*|_latin1\s*)?'(?P<str>[^'\\]*(?:(?:\\.|'')[^'\\]*)*)'
    | (?P<hex>0x[0-9A-Fa-f]*|[Xx]'[0-9A-Fa-f]*')
    | (?P<null>NULL)\b
    | (?P<num>[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)
    )"""
#: Punctuation between values (a value where punctuation belongs is named in the error).
TOKEN = re.compile(r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<end>;)|" + SCALAR + ")", re.X | re.S)
#: One value and the separator after it: one match per value, the hot loop of a dump.
VALUE = re.compile(r"\s*" + SCALAR + r"\s*(?P<sep>[,)])?", re.X | re.S)
OPEN_STRING = re.compile(r"(?:_[a-z0-9]+\s*)?'")
ESCAPE = re.compile(r"\\(.)|''", re.S)
GZIP_MAGIC = b"\x1f\x8b"
ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


class Incomplete(Exception):
    """The tuple goes on on the next line."""


def _unescape(text: str) -> str:
    if "\\" not in text and "''" not in text:
        return text
    return ESCAPE.sub(lambda m: "'" if m.group(1) is None else ESCAPES.get(m.group(1), m.group(1)), text)


def _value(match: re.Match[str]) -> Value:
    text = match.group("str")
    if text is not None:
        return _unescape(text)
    if match.group("null") is not None:
        return None
    digits = match.group("hex")
    if digits is not None:
        digits = digits[2:] if digits[:2] in ("0x", "0X") else digits[2:-1]
        return bytes.fromhex(digits).decode("utf-8", "replace")
    number = match.group("num")
    return int(number) if number.lstrip("+-").isdigit() else number


def parse_values(text: str, pos: int, keep: list[int], width: int | None,
                 between: bool = False) -> tuple[list[Row], int, bool, bool]:
    """The complete tuples of a VALUES list from ``pos``, each projected onto ``keep``.

    Returns the rows, where to go on, whether the statement ended, and whether that
    position is between two tuples (a separator comes next). When ``text`` ends before the
    statement does, the caller appends the next line to ``text[pos:]`` and calls again, so
    each line is scanned once. ImportFailure when the text is not a VALUES list (or a tuple
    has other than ``width`` values).
    """
    rows: list[Row] = []
    match = TOKEN.match
    while True:
        if between:
            token = match(text, pos)
            if token is None:
                _fail_or_incomplete(text, pos, "expected , or ;")
                return rows, pos, False, True
            if token.lastgroup == "end":
                return rows, token.end(), True, False
            if token.lastgroup != "comma":
                raise ImportFailure(f"expected , or ; found {text[token.start():token.start() + 20]!r}")
            pos = token.end()
        try:
            values, after = _tuple(text, pos)
        except Incomplete:
            return rows, pos, False, False
        if width is not None and len(values) != width:
            raise ImportFailure(f"a row has {len(values)} values but the table has {width} columns")
        rows.append(tuple(_value(values[i]) for i in keep))  # only the kept values are decoded
        pos, between = after, True


def _tuple(text: str, pos: int) -> tuple[list[re.Match[str]], int]:
    token = TOKEN.match(text, pos)
    if token is None or token.lastgroup != "open":
        _fail_or_incomplete(text, pos, "expected (")
        raise Incomplete
    pos = token.end()
    values: list[re.Match[str]] = []
    match = VALUE.match
    while True:
        value = match(text, pos)
        if value is None:
            _fail_or_incomplete(text, pos, "expected a value")
            raise Incomplete
        separator = value.group("sep")
        if separator is None:
            _fail_or_incomplete(text, value.end(), "expected , or )")
            raise Incomplete
        values.append(value)
        pos = value.end()
        if separator == ")":
            return values, pos


def _fail_or_incomplete(text: str, pos: int, expected: str) -> None:
    """Return when the text ends between two tokens or inside a string (the statement goes
    on on the next line); raise ImportFailure on anything else: it is not SQL we read."""
    rest = text[pos:].lstrip()
    if rest and not OPEN_STRING.match(rest):
        raise ImportFailure(f"{expected}, found {rest[:30]!r}")


class DumpReader:
    def __init__(self, path: Path, wanted: Mapping[str, tuple[str, ...]]) -> None:
        self._path = path
        self._wanted = wanted
        self._found = SourceTables(f"dump {path}")
        self._tables: list[str] = []

    def read(self) -> SourceTables:
        try:
            with self._path.open("rb") as raw:
                gzipped = raw.read(2) == GZIP_MAGIC
            with (gzip.open(self._path, "rb") if gzipped else self._path.open("rb")) as dump:
                self._scan(iter(dump))
        except (OSError, EOFError) as exc:
            raise ImportFailure(f"dump {self._path}: {getattr(exc, 'strerror', None) or exc}") from exc
        self._found.all_tables = tuple(self._tables)
        return self._found

    def _scan(self, lines: Iterator[bytes]) -> None:
        for line in lines:
            head = line[:300]
            word = head[:7].upper()
            if word.startswith(b"CREATE"):
                create = CREATE.match(head)
                if create:
                    self._create(create.group(1).decode("utf-8", "replace"), lines)
            elif word.startswith(b"INSERT") or word == b"REPLACE":
                insert = INSERT.match(head)
                if insert and insert.group(1).decode("utf-8", "replace") in self._wanted:
                    self._insert(insert.group(1).decode("utf-8", "replace"), line, insert.end(), lines)

    def _create(self, table: str, lines: Iterator[bytes]) -> None:
        self._tables.append(table)
        columns: list[str] = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if line.lstrip().startswith(")"):
                break
            column = COLUMN_LINE.match(line)
            if column and column.group(1) is not None:
                columns.append(column.group(1).replace("``", "`"))
            elif column and column.group(2).upper() not in NOT_A_COLUMN:
                columns.append(column.group(2))
        if table in self._wanted:
            if table in self._found.columns:
                raise ImportFailure(f"dump {self._path}: table {table} is created twice (a dump of several "
                                    "databases?): dump the site's database alone")
            self._found.columns[table] = tuple(columns)

    def _insert(self, table: str, first: bytes, start: int, lines: Iterator[bytes]) -> None:
        text = first.decode("utf-8", "replace")
        pos = len(first[:start].decode("utf-8", "replace"))
        listed = COLUMN_LIST.match(text, pos)
        if listed and not VALUES_WORD.match(text, pos):
            columns = tuple(c.strip().strip("`") for c in listed.group(1).split(","))
            pos = listed.end()
        else:
            if table not in self._found.columns:
                raise ImportFailure(f"dump {self._path}: INSERT INTO {table} comes without its CREATE TABLE, so its "
                                    "column order is unknown (dumped with --no-create-info?)")
            columns = self._found.columns[table]
        values = VALUES_WORD.match(text, pos)
        if not values:
            raise ImportFailure(f"dump {self._path}: INSERT INTO {table}: expected VALUES")
        self._found.columns.setdefault(table, columns)
        keep = [columns.index(c) for c in self._wanted[table] if c in columns]
        if len(keep) < len(self._wanted[table]):
            return  # check_tables reports the missing columns
        rows = self._found.rows.setdefault(table, [])
        pos, between = values.end(), False
        while True:
            try:
                found, pos, done, between = parse_values(text, pos, keep, len(columns), between)
            except ImportFailure as exc:
                raise ImportFailure(f"dump {self._path}: INSERT INTO {table}: {exc}") from None
            rows.extend(found)
            if done:
                return
            more = next(lines, None)
            if more is None:
                raise ImportFailure(f"dump {self._path}: INSERT INTO {table} is cut off at the end of the file")
            text = text[pos:] + more.decode("utf-8", "replace")
            pos = 0


def read_dump(path: Path, wanted: Mapping[str, tuple[str, ...]]) -> SourceTables:
    return DumpReader(path, wanted).read()
