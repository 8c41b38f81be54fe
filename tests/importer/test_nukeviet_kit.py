"""deploy/nukeviet: the PHP passes php -l; its sign-in and sign-out hooks create and end
sessions through the real session service; the block prints the widget, the pixel and
the prompt; the expiry consumer signs the user out of a real MariaDB on ``expired``."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pymysql
import pytest
import redis

from portal_pulse.core.clock import ManualClock
from portal_pulse.nukeviet.expiry_consumer import NukeVietSignOut, Options, consume
from portal_pulse.nukeviet.expiry_consumer import main as expiry_main
from portal_pulse.session.app_state import SCHEDULER
from portal_pulse.session.keys import SESSION_EVENTS_STREAMS
from tests.importer.mariadb_server import MariaDB
from tests.importer.nukeviet_portal import USERS, Portal
from tests.session.session_support import SERVICE_TOKEN, Client, ClientFactory, session_settings, start

KIT = Path(__file__).resolve().parents[2] / "deploy" / "nukeviet"
PHP_FILES = sorted(KIT.rglob("*.php"))


def php() -> str:
    found = shutil.which("php")
    assert found, "php not found: install Debian's php-cli and php-curl (scripts/system-deps.sh)"
    return found


def test_every_php_file_passes_php_lint() -> None:
    assert len(PHP_FILES) >= 3
    for path in PHP_FILES:
        result = subprocess.run([php(), "-l", str(path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


async def run_php(code: str, config: dict[str, Any], tmp_path: Path, cookie: str | None = None,
                  library: bool = True) -> str:
    """PHP code run by php-cli after the kit's includes/portal_pulse.php (unless not ``library``)."""
    settings = tmp_path / "portal_pulse.php"
    settings.write_text("<?php\nreturn json_decode('" + json.dumps(config).replace("'", "\\'") + "', true);\n")
    prelude = ((f"define('PORTAL_PULSE_CLI', 1); require {str(KIT / 'includes' / 'portal_pulse.php')!r};"
                if library else "") + (f"$_COOKIE['nv_pulse_session'] = {cookie!r};" if cookie else ""))
    result = await asyncio.to_thread(
        subprocess.run, [php(), "-d", "display_errors=stderr", "-r", prelude + code],
        capture_output=True, text=True, timeout=30, env={"PORTAL_PULSE_CONFIG": str(settings), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout


async def session_service(valkey_url: str, make_client: ClientFactory,
                          clock: ManualClock) -> tuple[Client, dict[str, Any]]:
    client = await start(make_client, session_settings(valkey_url), clock)
    config = {"session_service": str(client.make_url("")).rstrip("/"), "service_token": SERVICE_TOKEN}
    return client, config


async def test_sign_in_and_sign_out_hooks_use_the_session_service(
        valkey_url: str, make_client: ClientFactory, clock: ManualClock, tmp_path: Path) -> None:
    client, config = await session_service(valkey_url, make_client, clock)
    session_id = await run_php("echo portal_pulse_sign_in(7);", config, tmp_path)
    assert len(session_id) == 43
    status = await (await client.get(f"/v1/sessions/{session_id}")).json()
    assert status["state"] == "active"
    with redis.Redis.from_url(valkey_url) as sink:
        events: Any = [entry for stream in SESSION_EVENTS_STREAMS for entry in sink.xrange(stream)]
    assert [(f[b"type"], f[b"subject"]) for _, f in events] == [(b"created", b"nukeviet:7")]

    assert await run_php("echo portal_pulse_sign_out();", config, tmp_path, cookie=session_id) == "204"
    assert (await (await client.get(f"/v1/sessions/{session_id}")).json())["state"] == "ended"

    refused = await run_php("var_dump(portal_pulse_sign_in(7));", {**config, "service_token": "wrong"}, tmp_path)
    assert refused.strip() == "NULL"  # the sign-in goes on without a session


async def test_the_block_prints_the_widget_the_pixel_and_the_prompt(tmp_path: Path) -> None:
    config = {"site": "default", "counter_path": "/pulse"}
    guest = await run_php("echo portal_pulse_tags(false, '/news/thoi-su/bai-viet-1.html');", config, tmp_path)
    assert '<script src="/pulse/widget.js" data-site="default" data-lang="vi" async></script>' in guest
    assert '<img src="/pulse/v1/hit.gif?site=default&amp;path=%2Fnews%2Fthoi-su%2Fbai-viet-1.html"' in guest
    assert "session.js" not in guest
    session = "A" * 43
    member = await run_php("echo portal_pulse_tags(true, '/');", config, tmp_path, cookie=session)
    assert 'data-member="1"' in member
    assert f'<script src="/pulse-session/session.js" data-session="{session}" data-lang="vi"' in member
    forged = await run_php("echo portal_pulse_tags(true, '/');", config, tmp_path, cookie='x" onload="alert(1)')
    assert "session.js" not in forged and "onload" not in forged

    root = tmp_path / "nukeviet"  # the kit copied into a NukeViet tree, as docs/nukeviet.md says
    for part in ("includes/portal_pulse.php", "modules/statistics/blocks/global.portal_pulse.php"):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(KIT / part, root / part)
    block = await run_php(
        "define('NV_MAINFILE', 1); define('NV_SYSTEM', 1); define('NV_ROOTDIR', " + repr(str(root)) + ");"
        "function nv_function_exists($f) { return function_exists($f); }"
        "$_SERVER['REQUEST_URI'] = '/gioi-thieu/?page=2';"
        "include NV_ROOTDIR . '/modules/statistics/blocks/global.portal_pulse.php'; echo $content;",
        config, tmp_path, library=False)
    assert "path=%2Fgioi-thieu%2F\"" in block and "widget.js" in block


async def test_the_expiry_consumer_signs_the_user_out(
        mariadb: MariaDB, valkey_url: str, make_client: ClientFactory, clock: ManualClock, tmp_path: Path) -> None:
    mariadb.load("users", Portal().sql() + USERS)
    client, config = await session_service(valkey_url, make_client, clock)
    def connect() -> Any:
        return pymysql.connect(unix_socket=str(mariadb.socket), user="root", database="users", autocommit=True)

    connection = connect()
    options = Options(consumer="test", block_ms=100)
    sink = redis.Redis.from_url(valkey_url)
    target = NukeVietSignOut(connect, "nv4")
    try:
        assert await asyncio.to_thread(consume, sink, target, options, True) == 0  # creates the group at the end
        expiring = await run_php("echo portal_pulse_sign_in(7);", config, tmp_path)
        kept = await run_php("echo portal_pulse_sign_in(8);", config, tmp_path)
        clock.advance(30)  # idle 60 s, prompt 10 s, grace 2 s (tests.session.session_support)
        assert (await client.post(f"/v1/sessions/{kept}/activity")).status == 200
        clock.advance(40)
        await client.app[SCHEDULER].run_once()
        assert (await (await client.get(f"/v1/sessions/{expiring}")).json())["state"] == "expired"

        assert await asyncio.to_thread(consume, sink, target, options, True) == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT userid, checknum FROM nv4_users ORDER BY userid")
            users = dict(cursor.fetchall())
            cursor.execute("SELECT session_id FROM nv4_sessions ORDER BY session_id")
            sessions = [row[0] for row in cursor.fetchall()]
        assert users[7] != "c0ffee00c0ffee00c0ffee00c0ffee00" and len(users[7]) == 32
        assert users[8] == "beef0000beef0000beef0000beef0000"
        assert sessions == ["abc", "s8"]  # a guest and the other user stay online
        assert sum(sink.xpending(stream, "nukeviet")["pending"] for stream in SESSION_EVENTS_STREAMS) == 0
        assert await asyncio.to_thread(consume, sink, target, options, True) == 0  # nothing twice
    finally:
        sink.close()
        connection.close()
        target.close()


@pytest.mark.parametrize("subject", ["nukeviet:x", "other:7", "nukeviet:7 ", ""])
def test_only_nukeviet_subjects_name_a_user(subject: str) -> None:
    assert Options().user_of(subject) is None
    assert Options().user_of("nukeviet:7") == 7


def test_nginx_accepts_the_portal_server(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    deploy = KIT.parent
    server = (KIT / "nginx" / "nukeviet-portal.conf").read_text(encoding="utf-8")
    assert "include /etc/nginx/snippets/portal-pulse.conf;" in server
    assert "location ^~ /data/config/ { deny all; }" in server  # the token's file is never served
    server = server.replace("/etc/nginx/snippets/portal-pulse.conf", str(deploy / "nginx" / "portal-pulse.conf"))
    server = server.replace("listen 80;", "listen 127.0.0.1:1;")
    shutil.copy("/etc/nginx/fastcgi_params", tmp_path / "fastcgi_params")
    temp = "".join(f"{kind}_temp_path {tmp_path}/{kind}; " for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                         "scgi"))
    config = tmp_path / "nginx.conf"
    config.write_text(f"pid {tmp_path}/nginx.pid; error_log stderr warn; events {{ }}\n"
                      f"http {{ access_log off; {temp}\n"
                      f"include {deploy / 'nginx' / 'portal-pulse-upstreams.conf'};\n{server}\n}}\n")
    result = subprocess.run([nginx, "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


async def test_the_consumer_command(mariadb: MariaDB, valkey_url: str) -> None:
    mariadb.load("users_cli", Portal().sql() + USERS)
    url = f"mysql://root@localhost/users_cli?unix_socket={mariadb.socket}"
    with redis.Redis.from_url(valkey_url) as sink:
        stream = SESSION_EVENTS_STREAMS[-1]  # any bucket's stream: the consumer reads them all
        sink.xgroup_create(stream, "nukeviet", id="$", mkstream=True)
        sink.xadd(stream, {"type": "expired", "session": "d" * 32, "subject": "nukeviet:8", "at": "1",
                           "state": "expired", "remaining": "0"})
        code = await asyncio.to_thread(expiry_main, ["--redis-url", valkey_url, "--mysql-url", url, "--once"], {})
        assert code == 0
        assert sink.xpending(stream, "nukeviet")["pending"] == 0
    connection = pymysql.connect(unix_socket=str(mariadb.socket), user="root", database="users_cli")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT checknum FROM nv4_users WHERE userid = 8")
            assert cursor.fetchone() != ("beef0000beef0000beef0000beef0000",)
    finally:
        connection.close()
    mariadb.load("no_users", Portal().sql())
    for bad_url in ("pg://x@h/db", f"mysql://root:wrong@127.0.0.1:{mariadb.port}/users_cli",
                    f"mysql://root@localhost/no_users?unix_socket={mariadb.socket}"):
        bad = await asyncio.to_thread(expiry_main, ["--redis-url", valkey_url, "--mysql-url", bad_url, "--once"], {})
        assert bad == 1, bad_url
