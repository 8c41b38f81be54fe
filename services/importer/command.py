"""``portal-pulse import nukeviet``: read (live or from a dump), plan, write, report.

Everything is read and checked before anything is written, so bad input writes nothing.
Exit codes: 0 done, 1 the import failed (the message says why), 2 configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from portal_pulse.core.redis_conn import STORAGE_ERRORS, redis_client
from portal_pulse.core.settings import ConfigError, Settings, load_settings
from portal_pulse.importer.dump_reader import read_dump
from portal_pulse.importer.errors import ImportFailure
from portal_pulse.importer.mysql_reader import MysqlUrl, read_mysql
from portal_pulse.importer.nukeviet_schema import (
    LegacyData,
    Schema,
    SourceTables,
    check_tables,
    spec_columns,
    to_legacy,
)
from portal_pulse.importer.plan import Plan, check_article_path, make_plan
from portal_pulse.importer.report import render
from portal_pulse.importer.writer import Written, write_plan


def add_import_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], env: Mapping[str, str]) -> None:
    """``import nukeviet`` under the main parser's sub-commands."""
    sources = commands.add_parser("import", help="carry a legacy portal's figures over").add_subparsers(
        dest="source", required=True)
    nukeviet = sources.add_parser(
        "nukeviet", help="a NukeViet 4 portal: counter history, article views, referrers and top lists",
        description="Import a NukeViet portal's counter (total, this year's months, this month's days), article "
        "views and top lists. Idempotent: a second run replaces what the first wrote and changes nothing.")
    source = nukeviet.add_mutually_exclusive_group(required=True)
    source.add_argument("--mysql-url", help="mysql://user[:password]@host[:port]/database[?unix_socket=PATH] "
                        "(without a password in the URL, MYSQL_PWD is used)")
    source.add_argument("--dump", type=Path, help="a mysqldump / mariadb-dump (or phpMyAdmin SQL) file")
    nukeviet.add_argument("--prefix", default="nv4", help="the site's table prefix ($db_config['prefix']; default nv4)")
    nukeviet.add_argument("--lang", default="vi", help="language of the news and referrer tables (default vi)")
    nukeviet.add_argument("--news-module", default="news", help="the news module's table name (default news)")
    nukeviet.add_argument("--site", default="default", help="the configured site to import into (default default)")
    nukeviet.add_argument("--article-path", help="URL path of an article, e.g. '/news/{cat}/{alias}-{id}.html'; "
                          "without it article views are not imported")
    nukeviet.add_argument("--redis-url", default=env.get("PULSE_REDIS_URL"),
                          help="Redis/Valkey URL (env PULSE_REDIS_URL)")
    nukeviet.add_argument("--config", type=Path, default=env.get("PULSE_CONFIG"), help="TOML configuration file")
    nukeviet.add_argument("--dry-run", action="store_true", help="print the report and write nothing")
    nukeviet.add_argument("--force", action="store_true", help="import even though live counting has started")


def read_source(args: argparse.Namespace, schema: Schema, env: Mapping[str, str]) -> LegacyData:
    wanted = spec_columns(schema.tables())
    found: SourceTables
    if args.dump is not None:
        found = read_dump(args.dump, wanted)
    else:
        found = read_mysql(MysqlUrl.parse(args.mysql_url, env), wanted)
    check_tables(found, schema.tables(), found.source)
    return to_legacy(found, schema)


def prepare(args: argparse.Namespace, env: Mapping[str, str], now: float) -> tuple[Settings, Plan]:
    settings = load_settings(args.config, env, {"redis.url": args.redis_url})
    site = settings.site(args.site)
    if site is None:
        raise ImportFailure(f"--site: {args.site!r} is not a configured site "
                            f"({', '.join(s.name for s in settings.sites)})")
    template = check_article_path(args.article_path) if args.article_path else None
    schema = Schema(args.prefix, args.lang, args.news_module, with_articles=template is not None)
    data = read_source(args, schema, env)
    return settings, make_plan(data, site.zone, now, template)


async def _write(settings: Settings, site: str, plan: Plan, force: bool) -> Written:
    try:
        async with redis_client(settings.redis, attempts=2) as client:
            return await write_plan(client, site, plan, force)
    except STORAGE_ERRORS as exc:
        raise ImportFailure(f"Redis at {_without_password(settings.redis.url)}: {type(exc).__name__}: {exc}") from exc


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def run_import(args: argparse.Namespace, env: Mapping[str, str], now: float | None = None) -> int:
    try:
        settings, plan = prepare(args, env, time.time() if now is None else now)
        written = None if args.dry_run else asyncio.run(_write(settings, args.site, plan, args.force))
    except ConfigError as exc:
        print(f"portal-pulse: configuration error: {exc}", file=sys.stderr)
        return 2
    except ImportFailure as exc:
        print(f"portal-pulse import nukeviet: {exc}", file=sys.stderr)
        return 1
    site = settings.site(args.site)
    assert site is not None
    print(render(plan, args.site, site.timezone, written), end="")
    return 0
