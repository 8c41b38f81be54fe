"""Nothing in Redis, the logs or the metrics holds a raw IP address, User-Agent or
session id. Traffic carries distinctive addresses (through the trusted proxy's
X-Forwarded-For, and as the direct peer from a spare loopback address), distinctive
User-Agents (browsers and a bot) and real session ids, on every endpoint and on the
error paths; then every key and value of every type, both /metrics pages and both
service logs are searched for them."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
import redis

from portal_pulse.core.keys import SESSION_EVENTS_STREAMS
from portal_pulse.counter.calendar_keys import day_key
from portal_pulse.counter.visitor import daily_salt, ip_digest
from tests.conftest import SERVICE_TOKEN
from tests.reliability.probe import create_session, dump_redis, get_text, request, until
from tests.reliability.procs import Cluster, ServiceProcess

FORWARDED_IPS = ["203.0.113.77", "198.51.100.123", "2001:db8::beef:77"]
#: Connections made from this address reach the services as an untrusted, direct peer.
PEER_IP = "127.0.0.66"
BROWSER_UAS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0 Quokkafox/7.7.7",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Wombatium/3.1.4",
]
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) Numbatcrawl/9"
MARKERS = ["Quokkafox", "Wombatium", "Numbatcrawl"]


def ip_forms(ip: str) -> list[str]:
    """The ways an address could appear: as sent, expanded, and URL-quoted."""
    parsed = ipaddress.ip_address(ip)
    forms = {ip, str(parsed), parsed.exploded, quote(ip)}
    return sorted(forms)


async def drive_counter(counter: ServiceProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for n, (ip, ua) in enumerate([(ip, ua) for ip in FORWARDED_IPS for ua in [*BROWSER_UAS, BOT_UA]]):
            headers = {"X-Forwarded-For": ip, "User-Agent": ua}
            body = {"site": "default", "kind": "pageview", "path": f"/news/{n}", "visitor": f"v{n}", "id": f"e{n}",
                    "referrer": "https://search.test/?q=x"}
            for kind in ("pageview", "heartbeat", "download"):
                async with http.post(f"{counter.url}/v1/hit?stats=1", json={**body, "kind": kind, "id": f"{kind}{n}"},
                                     headers=headers) as response:
                    assert response.status == 200, await response.text()  # ?stats=1: the stats object
            # the no-JS pixel: the visitor is derived from the address and the User-Agent
            async with http.get(f"{counter.url}/v1/hit.gif?site=default&path=/pixel", headers=headers) as response:
                assert response.status == 200
            async with http.post(f"{counter.url}/v1/hit", data=b"{",
                                 headers={**headers, "Content-Type": "application/json"}) as response:
                assert response.status == 400
            async with http.get(f"{counter.url}/v1/stats?site=nowhere", headers=headers) as response:
                assert response.status == 404
    # the same, as a direct peer that is not a trusted proxy
    connector = aiohttp.TCPConnector(local_addr=(PEER_IP, 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        for ua in [*BROWSER_UAS, BOT_UA]:
            async with http.get(f"{counter.url}/v1/hit.gif?site=default&path=/peer",
                                headers={"User-Agent": ua, "X-Forwarded-For": "192.0.2.1"}) as response:
                assert response.status == 200
            async with http.post(f"{counter.url}/v1/hit", json={"site": "default", "path": "/p"},
                                 headers={"User-Agent": ua, "Origin": "http://evil.test"}) as response:
                assert response.status == 403


async def malformed_from_peer(proc: ServiceProcess) -> None:
    """A request aiohttp cannot parse, from the distinctive peer, quoting a User-Agent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proc.port, local_addr=(PEER_IP, 0))
    try:
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: {BROWSER_UAS[0]}\x00\r\n\r\n".encode())
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def drive_sessions(session: ServiceProcess) -> list[str]:
    ids = []
    auth = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    for n, ip in enumerate(FORWARDED_IPS):
        ua = {"User-Agent": BROWSER_UAS[n % 2], "X-Forwarded-For": ip}
        created = await create_session(session.url, SERVICE_TOKEN, subject=f"user-{n}", idle_timeout=2,
                                       prompt_seconds=1)
        sid = created["id"]
        ids.append(sid)
        base = f"{session.url}/v1/sessions/{sid}"
        assert (await request("GET", base, headers=ua))[0] == 200
        assert (await request("POST", f"{base}/activity", headers=ua))[0] == 200
        assert (await request("POST", f"{base}/keepalive", headers=ua))[0] == 200
        async with aiohttp.ClientSession() as http, http.get(f"{base}/events", headers=ua) as response:
            assert response.status == 200
            await asyncio.wait_for(response.content.readline(), 5)  # the state snapshot
        assert (await request("POST", f"{session.url}/v1/sessions", data=b"{", headers={**auth, **ua,
                "Content-Type": "application/json"}))[0] == 400
        # wrong ids close to the real one: 404s must not log them either
        assert (await request("GET", base[:-1] + "Z", headers=ua))[0] == 404
        assert (await request("GET", f"{base}x", headers=ua))[0] == 404
    assert (await request("DELETE", f"{session.url}/v1/sessions/{ids[0]}"))[0] == 204
    assert (await request("POST", f"{session.url}/v1/sessions/{ids[0]}/keepalive"))[0] == 410
    # the sessions reach the prompt and expiry, so the scheduler's paths run too: wait for
    # the announcements themselves in the stream, not for a guessed span of time
    events = redis.Redis.from_url(session.redis_url)
    try:
        def announced() -> bool:
            entries: Any = [entry for stream in SESSION_EVENTS_STREAMS for entry in events.xrange(stream) or []]
            kinds = [fields[b"type"] for _, fields in entries]
            return kinds.count(b"prompt") >= 1 and kinds.count(b"expired") >= len(ids) - 1
        await until(announced, within=15, what="the prompt and expiry announcements")
    finally:
        events.close()
    return ids


async def test_no_raw_ip_user_agent_or_session_id_is_kept(shared: Cluster) -> None:
    env = {"PULSE_LOG_LEVEL": "DEBUG"}
    counter = shared.service("counter", env)
    session = shared.service("session", env)
    await drive_counter(counter)
    ids = await drive_sessions(session)
    for proc in (counter, session):
        await malformed_from_peer(proc)

    stored = dump_redis(shared.redis_url)
    metrics = {proc.kind: await get_text(f"{proc.url}/metrics") for proc in (counter, session)}
    # the access-log lines of the scrapes just made are the last ones each process writes
    await until(lambda: all("GET /metrics 200" in proc.log() for proc in (counter, session)), within=5,
                what="the access-log lines of the scrapes")
    logs = {proc.kind: proc.log() for proc in (counter, session)}
    # the search covers what was written: hashes, zsets, HyperLogLogs, the event stream, the logs
    for written in (b"pulse:{default}:totals", b"online:guests", b"uv:day:", b"pulse:{session:", b"user-1"):
        assert written in stored, written
    assert "/v1/sessions/{id}/keepalive" in logs["session"] and "/v1/hit.gif" in logs["counter"]
    assert "refused a request it could not handle" in logs["counter"]

    needles = {
        **{f"ip {form}": form for ip in [*FORWARDED_IPS, PEER_IP] for form in ip_forms(ip)},
        **{f"user-agent marker {m}": m for m in MARKERS},
        **{f"session id {i[:6]}...": i for i in ids},
        **{f"session id prefix {i[:6]}...": i[:16] for i in ids},
    }
    found = []
    for what, needle in needles.items():
        if needle.encode() in stored:
            found.append(f"{what} in Redis")
        for kind, text in metrics.items():
            if needle in text:
                found.append(f"{what} in {kind} /metrics")
        for kind, text in logs.items():
            if needle in text:
                line = next(line for line in text.splitlines() if needle in line)
                found.append(f"{what} in {kind} log: {line[:300]}")
    assert not found, "\n".join(found)


async def test_a_redis_dump_holds_nothing_that_recovers_an_address_without_the_secret(shared: Cluster) -> None:
    """The attack of issue 11: read everything Redis holds, then try every value in it as
    the hashing secret and hash the candidate addresses; no rate-limit or visitor digest
    may come out. The same attack with the real secret (which lives only in the process's
    environment) finds them, so the search would see a leak."""
    counter = shared.service("counter", {"PULSE_SECRET": SECRET})
    await drive_counter(counter)
    stored = dump_redis(shared.redis_url)
    assert b"deployment-secret" not in stored and SECRET.encode() not in stored
    candidates = {part for part in stored.split(b"\n") if part} | {b""}
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    days = {day_key((datetime.now(zone) + timedelta(hours=shift)).date()) for shift in (-1, 0, 1)}

    def recovered(secret: bytes) -> list[str]:
        found = []
        for day in days:
            salt = daily_salt(secret, day)
            for ip in FORWARDED_IPS:
                if ip_digest(salt, "default", ip).encode() in stored:
                    found.append(ip)
        return found

    assert sorted(set(recovered(SECRET.encode()))) == sorted(FORWARDED_IPS)  # the search works
    leaks = {candidate[:40]: ips for candidate in candidates if (ips := recovered(candidate))}
    assert not leaks, leaks


SECRET = "privacy-test-secret-9f3c1e7a2b"
