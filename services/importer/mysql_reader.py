"""Read the wanted tables live from MySQL/MariaDB with PyMySQL (sync; an import is one
short batch job). The URL is ``mysql://user[:password]@host[:port]/database``, with
``?unix_socket=/path`` for a local socket; without a password in the URL, ``MYSQL_PWD``
from the environment is used, so the password need not be on the command line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.nukeviet_schema import Row, SourceTables

SCHEMES = ("mysql", "mariadb")


@dataclass(frozen=True)
class MysqlUrl:
    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: str | None

    @classmethod
    def parse(cls, url: str, env: Mapping[str, str]) -> MysqlUrl:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ImportFailure(f"--mysql-url: expected mysql://user[:password]@host[:port]/database, got "
                                f"scheme {parts.scheme!r}")
        database = unquote(parts.path.lstrip("/"))
        if not database or "/" in database:
            raise ImportFailure("--mysql-url: the URL names no database (mysql://user@host/database)")
        try:
            port = parts.port or 3306
        except ValueError as exc:
            raise ImportFailure(f"--mysql-url: {exc}") from exc
        socket = parse_qs(parts.query).get("unix_socket", [None])[0]
        password = unquote(parts.password) if parts.password is not None else env.get("MYSQL_PWD", "")
        return cls(parts.hostname or "localhost", port, unquote(parts.username or "root"), password, database, socket)

    def describe(self) -> str:
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"mysql {self.user}@{where}/{self.database}"


def read_mysql(url: MysqlUrl, wanted: Mapping[str, tuple[str, ...]], connect_timeout: float = 10.0) -> SourceTables:
    import pymysql  # the driver is needed only by a live import

    found = SourceTables(url.describe())
    try:
        connection = pymysql.connect(
            host=url.host, port=url.port, user=url.user, password=url.password, database=url.database,
            unix_socket=url.unix_socket, charset="utf8mb4", connect_timeout=int(connect_timeout),
        )
    except pymysql.MySQLError as exc:
        raise ImportFailure(f"{url.describe()}: cannot connect: {exc.args[-1] if exc.args else exc}") from exc
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                           "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION")
            columns: dict[str, list[str]] = {}
            for table, column in cursor.fetchall():
                columns.setdefault(str(table), []).append(str(column))
            found.all_tables = tuple(columns)
            for table, needed in wanted.items():
                if table not in columns:
                    continue
                found.columns[table] = tuple(columns[table])
                if any(c not in columns[table] for c in needed):
                    continue  # check_tables names the missing columns
                select = ", ".join(f"`{c}`" for c in needed)
                cursor.execute(f"SELECT {select} FROM `{table}`")  # names from the schema, not from input
                found.rows[table] = [_row(r) for r in cursor.fetchall()]
    except pymysql.MySQLError as exc:
        raise ImportFailure(f"{url.describe()}: {exc.args[-1] if exc.args else exc}") from exc
    finally:
        connection.close()
    return found


def _row(raw: tuple[object, ...]) -> Row:
    return tuple(v if v is None or isinstance(v, int | str) else (
        v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)) for v in raw)
