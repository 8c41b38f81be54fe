"""The import against a real MariaDB, live and from the real mariadb-dump output of the
same database, shown through the real counter app; idempotent; bad input writes nothing."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from portal_pulse.counter.keys import LEGACY_TOP_DIMENSIONS, SiteKeys
from tests.counter.conftest import CounterFactory
from tests.importer.importing import TEMPLATE, run_import, snapshot
from tests.importer.mariadb_server import MariaDB
from tests.importer.nukeviet_portal import OTHER_SCHEMA, ZONE, Portal

FIGURES = {"today": 25_606, "this_month": 802_647, "last_month": 867_510, "total": 28_564_413}


@pytest.fixture(scope="session")
def portal_db(mariadb: MariaDB) -> str:
    mariadb.load("portal", Portal().sql())
    return "portal"


async def test_live_and_dump_imports_write_the_same_and_a_second_run_changes_nothing(
        mariadb: MariaDB, portal_db: str, valkey_url: str, tmp_path: Path) -> None:
    live = await run_import("--mysql-url", mariadb.url(portal_db), "--redis-url", valkey_url,
                            "--article-path", TEMPLATE)
    assert live.code == 0, live.err
    written = snapshot(valkey_url)
    assert len(written) > 5

    again = await run_import("--mysql-url", mariadb.url(portal_db), "--redis-url", valkey_url,
                             "--article-path", TEMPLATE)
    assert again.code == 0, again.err
    assert snapshot(valkey_url) == written
    assert "(unchanged)" in again.out and "changed: none" in again.out and "0 pages changed" in again.out

    for options in ((), ("--skip-extended-insert",), ("--complete-insert", "--compact")):
        redis.Redis.from_url(valkey_url).flushall()
        path = mariadb.dump(portal_db, tmp_path / f"dump{len(options)}.sql", *options)
        from_dump = await run_import("--dump", str(path), "--redis-url", valkey_url, "--article-path", TEMPLATE)
        assert from_dump.code == 0, from_dump.err
        assert snapshot(valkey_url) == written, options
        assert same_report(from_dump.out) == same_report(live.out)  # but for the source line and the moment


def same_report(report: str) -> str:
    return re.sub(r"as of [0-9T:+-]+", "as of …", report.split("\n", 1)[1])


async def test_the_counter_shows_the_imported_figures(
        mariadb: MariaDB, portal_db: str, valkey_url: str, start_counter: CounterFactory) -> None:
    run = await run_import("--mysql-url", mariadb.url(portal_db), "--redis-url", valkey_url,
                           "--article-path", TEMPLATE)
    assert run.code == 0, run.err
    counter = await start_counter(valkey_url)  # its clock: 2026-11-26 17:00 in Ho Chi Minh City
    stats = await counter.stats()
    assert {k: stats[k] for k in FIGURES} == FIGURES

    months = await get(counter, "/v1/stats/series", unit="month", **{"from": "2026-01-01", "to": "2026-12-31"})
    assert [b["visits"] for b in months["buckets"]] == [*Portal().months.values(), 0]
    days = await get(counter, "/v1/stats/series", unit="day", **{"from": "2026-11-24", "to": "2026-11-27"})
    assert [b["visits"] for b in days["buckets"]] == [Portal().days()[24], Portal().days()[25], 25_606, 0]

    for path, views in Portal().article_views(TEMPLATE).items():
        page = await get(counter, "/v1/pages", path=path)
        assert (page["views"], page["downloads"]) == (views, 0), path
    assert (await get(counter, "/v1/pages", path="/news/thoi-su/chuyen-muc-da-xoa-6.html"))["views"] == 0

    client = counter.app_redis()
    tops = {d: await client.hgetall(SiteKeys("default").legacy_top(d)) for d in LEGACY_TOP_DIMENSIONS}
    assert tops["countries"][b"unknown"] == b"914413" and b"unkown" not in tops["countries"]
    assert tops["referrers"][b"www.google.com.vn"] == b"4100000"
    assert tops["bots"] == {b"Googlebot": b"480000", b"bingbot": b"120000", b"Baiduspider": b"75000"}
    assert tops["browsers"][b"chrome"] == b"15000000" and tops["os"][b"android"] == b"9000000"

    await counter.hit(path="/news/thoi-su/khai-mac-ky-hop-thu-10-1.html")
    stats = await counter.stats()
    assert (stats["today"], stats["this_month"], stats["total"]) == (25_607, 802_648, 28_564_414)


async def get(counter: Any, route: str, **params: str) -> dict[str, Any]:
    response = await counter.client.get(route, params={"site": "default", **params})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_live_counting_is_not_overwritten_unless_forced(
        mariadb: MariaDB, portal_db: str, valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url)
    article = "/news/kinh-te/gia-xang-giam-lan-thu-3-2.html"
    await counter.hit(path=article)
    before = snapshot(valkey_url)
    args = ("--mysql-url", mariadb.url(portal_db), "--redis-url", valkey_url, "--article-path", TEMPLATE)
    refused = await run_import(*args)
    assert refused.code == 1
    assert "already counted 1 visits live" in refused.err and "--force" in refused.err
    assert snapshot(valkey_url) == before

    assert (await run_import(*args, "--force")).code == 0
    assert (await get(counter, "/v1/pages", path=article))["views"] == 98_765 + 1  # live views are kept
    forced = snapshot(valkey_url)
    assert (await run_import(*args, "--force")).code == 0
    assert snapshot(valkey_url) == forced
    assert (await run_import(*args[:4], "--force")).code == 0  # without --article-path: imported views go
    assert (await get(counter, "/v1/pages", path=article))["views"] == 1
    assert (await counter.stats())["total"] == 28_564_413 + 1


async def test_dry_run_writes_nothing(mariadb: MariaDB, portal_db: str, valkey_url: str) -> None:
    run = await run_import("--mysql-url", mariadb.url(portal_db), "--redis-url", valkey_url, "--dry-run",
                           "--article-path", TEMPLATE)
    assert run.code == 0, run.err
    assert "Would write (dry run, nothing written)" in run.out
    assert "month/Dec 0: month rows after the month of c_time/last (2026-11) are last year's" in run.out
    assert "total 28,564,413; months 11 (2026-01 .. 2026-11); days 26 (2026-11-01 .. 2026-11-26)" in run.out
    assert snapshot(valkey_url) == {}


@pytest.mark.parametrize(("last", "now", "figures"), [
    # before the first visit of December: the rows still hold November
    (datetime(2026, 11, 30, 23, 50, tzinfo=ZONE), datetime(2026, 12, 1, 8, 0, tzinfo=ZONE),
     {"today": 0, "this_month": 0, "last_month": 802_647}),
    # January: December was zeroed at the new year
    (datetime(2027, 1, 5, 9, 30, tzinfo=ZONE), datetime(2027, 1, 5, 12, 0, tzinfo=ZONE),
     {"today": 25_606, "this_month": 802_647, "last_month": 0}),
])
async def test_periods_are_dated_by_the_last_visit(
        mariadb: MariaDB, valkey_url: str, tmp_path: Path, start_counter: CounterFactory,
        last: datetime, now: datetime, figures: dict[str, int]) -> None:
    portal = Portal(last=last, months={last.month: 802_647})
    mariadb.load("dated", portal.sql())
    dump = mariadb.dump("dated", tmp_path / "dated.sql")
    assert (await run_import("--dump", str(dump), "--redis-url", valkey_url)).code == 0
    counter = await start_counter(valkey_url)
    counter.clock.set(now.timestamp())
    stats = await counter.stats()
    assert {k: stats[k] for k in figures} == figures
    months = await get(counter, "/v1/stats/series", unit="month", **{"from": "2026-11-01", "to": "2027-01-31"})
    expected = {"2026-11": 802_647, "2026-12": 0, "2027-01": 0} if last.year == 2026 else {
        "2026-11": 0, "2026-12": 0, "2027-01": 802_647}
    assert {b["start"]: b["visits"] for b in months["buckets"]} == expected


async def test_bad_input_is_a_clear_error_and_writes_nothing(
        mariadb: MariaDB, portal_db: str, valkey_url: str, tmp_path: Path) -> None:
    mariadb.load("wordpress", OTHER_SCHEMA)
    mariadb.load("no_referers", Portal().sql() + "DROP TABLE nv4_vi_referer_stats;")
    mariadb.load("no_categories", Portal().sql() + "DROP TABLE nv4_vi_news_cat;")
    other_dump = mariadb.dump("wordpress", tmp_path / "wordpress.sql")
    redis_args = ("--redis-url", valkey_url)
    cases = [
        (("--mysql-url", mariadb.url("wordpress")), "table nv4_counter (counter) is missing",
         "No NukeViet counter table found"),
        (("--dump", str(other_dump)), "table nv4_counter (counter) is missing", "is this a NukeViet database"),
        (("--mysql-url", mariadb.url(portal_db), "--prefix", "nv5"), "table nv5_counter (counter) is missing",
         "nv4_counter (--prefix nv4)"),
        (("--mysql-url", mariadb.url("no_referers")), "table nv4_vi_referer_stats (referring hosts) is missing",
         ""),
        (("--mysql-url", mariadb.url("no_categories"), "--article-path", TEMPLATE),
         "table nv4_vi_news_cat (categories) is missing", ""),
        (("--mysql-url", mariadb.url(portal_db), "--lang", "en"), "table nv4_en_referer_stats", ""),
        (("--mysql-url", f"mysql://root:wrong@127.0.0.1:{mariadb.port}/portal"), "cannot connect", "denied"),
        (("--mysql-url", mariadb.url("nope")), "cannot connect", "nope"),
        (("--dump", str(tmp_path / "missing.sql")), "No such file", ""),
        (("--mysql-url", mariadb.url(portal_db), "--site", "elsewhere"), "'elsewhere' is not a configured site", ""),
        (("--mysql-url", "postgres://x@h/db"), "expected mysql://", ""),
        (("--mysql-url", mariadb.url(portal_db), "--prefix", "nv4;drop"), "--prefix", "not a table name part"),
    ]
    for args, message, detail in cases:
        run = await run_import(*args, *redis_args)
        assert run.code == 1, (args, run.out)
        assert message in run.err and detail in run.err, (args, run.err)
        assert run.out == ""
        assert snapshot(valkey_url) == {}, args
