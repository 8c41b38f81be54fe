"""What the importer reads from a NukeViet 4 database: table names, the columns it needs,
and the typed rows both readers (live MySQL and a dump) produce.

Facts (NukeViet 4.5): ``{prefix}_counter`` has ``c_type``, ``c_val``, ``last_update``,
``c_count`` plus one ``{lang}_count`` per installed language, so its column order differs
between sites; ``c_count`` counts every language. Article views are ``hitstotal`` in
``{prefix}_{lang}_{module}_rows``, categories in ``{prefix}_{lang}_{module}_cat``, and
referring hosts in ``{prefix}_{lang}_referer_stats``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from portal_pulse.importer.errors import ImportFailure

Value = str | int | None
Row = tuple[Value, ...]

NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class TableSpec:
    role: str  # what the table holds, for messages: "counter", "articles", ...
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Schema:
    """The tables of one site's import: the prefix, language and news module chosen."""

    prefix: str = "nv4"
    lang: str = "vi"
    news_module: str = "news"
    with_articles: bool = False

    def __post_init__(self) -> None:
        for option, value in (("--prefix", self.prefix), ("--lang", self.lang), ("--news-module", self.news_module)):
            if not NAME.match(value):
                raise ImportFailure(f"{option}: {value!r} is not a table name part (letters, digits, _)")

    @property
    def counter(self) -> TableSpec:
        return TableSpec("counter", f"{self.prefix}_counter", ("c_type", "c_val", "c_count"))

    @property
    def referers(self) -> TableSpec:
        return TableSpec("referring hosts", f"{self.prefix}_{self.lang}_referer_stats", ("host", "total"))

    @property
    def articles(self) -> TableSpec:
        return TableSpec("articles", f"{self.prefix}_{self.lang}_{self.news_module}_rows",
                         ("id", "catid", "alias", "hitstotal"))

    @property
    def categories(self) -> TableSpec:
        return TableSpec("categories", f"{self.prefix}_{self.lang}_{self.news_module}_cat", ("catid", "alias"))

    def tables(self) -> tuple[TableSpec, ...]:
        wanted = (self.counter, self.referers)
        return (*wanted, self.articles, self.categories) if self.with_articles else wanted


@dataclass
class SourceTables:
    """What a reader found: each wanted table's rows, projected onto the spec's columns."""

    source: str  # "dump FILE" or "mysql host/db", for the report
    rows: dict[str, list[Row]] = field(default_factory=dict)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # every column of each wanted table
    all_tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class CounterRow:
    c_type: str
    c_val: str
    count: int


@dataclass(frozen=True)
class Article:
    id: int
    catid: int
    alias: str
    views: int


@dataclass
class LegacyData:
    """A NukeViet site's figures, typed."""

    source: str
    counter: list[CounterRow]
    referers: dict[str, int]
    articles: list[Article] | None  # None: not read (no --article-path)
    categories: dict[int, str]
    languages: tuple[str, ...]  # the {lang}_count columns of the counter table


def check_tables(found: SourceTables, specs: Sequence[TableSpec], where: str) -> None:
    """Raise naming every missing table or column; suggests the prefix when another one fits."""
    problems: list[str] = []
    for spec in specs:
        columns = found.columns.get(spec.name)
        if columns is None:
            problems.append(f"table {spec.name} ({spec.role}) is missing")
            continue
        missing = [c for c in spec.columns if c not in columns]
        if missing:
            problems.append(f"table {spec.name} ({spec.role}) has no column {', '.join(missing)}")
    if problems:
        message = f"{where}: " + "; ".join(problems)
        hint = _prefix_hint(found.all_tables)
        raise ImportFailure(message + (f". {hint}" if hint else ""))


def _prefix_hint(tables: Sequence[str]) -> str:
    prefixes = sorted({name[: -len("_counter")] for name in tables if name.endswith("_counter")})
    if prefixes:
        return "Counter tables found: " + ", ".join(f"{p}_counter (--prefix {p})" for p in prefixes)
    return "No NukeViet counter table found at all: is this a NukeViet database?"


def _int(value: Value, where: str) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError as exc:
        raise ImportFailure(f"{where}: {str(value)[:40]!r} is not a number") from exc


def _text(value: Value) -> str:
    return "" if value is None else str(value)


def to_legacy(found: SourceTables, schema: Schema) -> LegacyData:
    """Type the rows (``found`` has passed ``check_tables``)."""
    counter = [CounterRow(_text(t), _text(v), _int(n, f"{schema.counter.name}.c_count"))
               for t, v, n in found.rows.get(schema.counter.name, [])]
    referers: dict[str, int] = {}
    for host, total in found.rows.get(schema.referers.name, []):
        referers[_text(host)] = referers.get(_text(host), 0) + _int(total, f"{schema.referers.name}.total")
    articles: list[Article] | None = None
    categories: dict[int, str] = {}
    if schema.with_articles:
        name = schema.articles.name
        articles = [Article(_int(i, f"{name}.id"), _int(c, f"{name}.catid"), _text(a), _int(h, f"{name}.hitstotal"))
                    for i, c, a, h in found.rows.get(name, [])]
        categories = {_int(c, f"{schema.categories.name}.catid"): _text(a)
                      for c, a in found.rows.get(schema.categories.name, [])}
    columns = found.columns.get(schema.counter.name, ())
    languages = tuple(c[: -len("_count")] for c in columns if c.endswith("_count") and c != "c_count")
    return LegacyData(found.source, counter, referers, articles, categories, languages)


def spec_columns(specs: Sequence[TableSpec]) -> Mapping[str, tuple[str, ...]]:
    return {spec.name: spec.columns for spec in specs}
