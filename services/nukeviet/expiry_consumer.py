"""Sign NukeViet users out when their session expires: a consumer of the session event
streams (one per session bucket: ``portal_pulse.session.keys.SESSION_EVENTS_STREAMS``, the
one place their names are kept; one blocking ``XREADGROUP`` reads them all, which needs
a single Redis server, not a cluster) in a consumer group, so several copies share the
work and a restart resumes where it stopped (entries are acknowledged only after the
database was updated).

On ``expired`` with subject ``nukeviet:<userid>`` it gives the user a new ``checknum``
in ``{prefix}_users`` (NukeViet checks it on every request, so every signed-in browser
of that user is signed out; this needs ``allowuserloginmulti`` off, NukeViet's default)
and removes the user's rows from ``{prefix}_sessions`` (the online list).

    python -m portal_pulse.nukeviet.expiry_consumer --redis-url URL --mysql-url URL [--prefix nv4]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.mysql_reader import MysqlUrl
from portal_pulse.importer.nukeviet_schema import NAME
from portal_pulse.session.keys import SESSION_EVENTS_STREAMS

log = logging.getLogger("portal_pulse.nukeviet.expiry")
GROUP = "nukeviet"
BATCH = 100


@dataclass(frozen=True)
class Options:
    prefix: str = "nv4"
    subject_prefix: str = "nukeviet:"
    group: str = GROUP
    consumer: str = socket.gethostname()
    streams: tuple[str, ...] = SESSION_EVENTS_STREAMS
    block_ms: int = 5000

    def user_of(self, subject: str) -> int | None:
        match = re.fullmatch(re.escape(self.subject_prefix) + r"([0-9]{1,10})", subject)
        return int(match.group(1)) if match else None


class NukeVietSignOut:
    """Signs one user out of NukeViet, through PyMySQL connections (autocommit) that
    ``connect`` opens: again when the server closed an idle one."""

    def __init__(self, connect: Callable[[], Any], prefix: str) -> None:
        if not NAME.match(prefix):
            raise ImportFailure(f"--prefix: {prefix!r} is not a table name part")
        self._connect = connect
        self._connection: Any = None
        self._prefix = prefix

    def _open(self) -> Any:
        import pymysql

        if self._connection is not None:
            try:
                self._connection.ping()
                return self._connection
            except pymysql.MySQLError:
                self._connection.close()
        self._connection = self._connect()
        return self._connection

    def check(self) -> None:
        """Connect now and read the users table (raises the driver's error)."""
        with self._open().cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM `{self._prefix}_users` WHERE userid = 0")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def sign_out(self, userid: int) -> None:
        with self._open().cursor() as cursor:
            cursor.execute(f"UPDATE `{self._prefix}_users` SET checknum = %s WHERE userid = %s",
                           (secrets.token_hex(16), userid))
            cursor.execute(f"DELETE FROM `{self._prefix}_sessions` WHERE userid = %s", (userid,))


def ensure_group(client: redis.Redis, options: Options) -> None:
    """The group starts at each stream's end: expiries from before the first start are not replayed."""
    for stream in options.streams:
        try:
            client.xgroup_create(stream, options.group, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def consume(client: redis.Redis, target: NukeVietSignOut, options: Options, once: bool = False) -> int:
    """Handle entries until stopped (or, with ``once``, until none is waiting); returns how
    many users were signed out. Entries left pending by a crash are handled first."""
    ensure_group(client, options)
    signed_out = 0
    position = "0"  # first this consumer's pending entries, then new ones
    while True:
        reply: Any = client.xreadgroup(options.group, options.consumer,
                                       dict.fromkeys(options.streams, position), count=BATCH,
                                       block=None if position == "0" or once else options.block_ms)
        entries = [(_text(stream), entry) for stream, stream_entries in reply or [] for entry in stream_entries]
        if not entries:
            if position == "0":
                position = ">"
                continue
            if once:
                return signed_out
            continue
        for stream, (entry_id, fields) in entries:
            event = {_text(k): _text(v) for k, v in (fields or {}).items()}  # None: trimmed from the stream
            userid = options.user_of(event.get("subject", "")) if event.get("type") == "expired" else None
            if userid is not None:
                target.sign_out(userid)
                signed_out += 1
                log.info("signed out NukeViet user %d: session expired", userid)
            client.xack(stream, options.group, entry_id)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(prog="python -m portal_pulse.nukeviet.expiry_consumer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=env.get("PULSE_REDIS_URL"), required="PULSE_REDIS_URL" not in env)
    parser.add_argument("--mysql-url", required=True, help="NukeViet's database (password: URL or MYSQL_PWD)")
    parser.add_argument("--prefix", default="nv4")
    parser.add_argument("--subject-prefix", default="nukeviet:", help="what the sign-in hook puts before the userid")
    parser.add_argument("--consumer", default=socket.gethostname(), help="this copy's name in the group")
    parser.add_argument("--once", action="store_true", help="handle what is waiting, then exit")
    args = parser.parse_args(argv)
    import pymysql  # needed by this consumer only

    try:
        url = MysqlUrl.parse(args.mysql_url, env)
        target = NukeVietSignOut(lambda: pymysql.connect(
            host=url.host, port=url.port, user=url.user, password=url.password, database=url.database,
            unix_socket=url.unix_socket, charset="utf8mb4", autocommit=True), args.prefix)
        target.check()  # a wrong URL or password fails at start, not at the first expiry
    except (ImportFailure, pymysql.MySQLError) as exc:
        print(f"expiry consumer: {exc}", file=sys.stderr)
        return 1
    client = redis.Redis.from_url(args.redis_url)
    options = Options(prefix=args.prefix, subject_prefix=args.subject_prefix, consumer=args.consumer)
    try:
        consume(client, target, options, once=args.once)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        target.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    raise SystemExit(main())
