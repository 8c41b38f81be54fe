"""Abuse: counter inflation from one client (limits kept in Redis, so they hold across two
counter processes), cross-origin calls, missing and wrong tokens, and guessed, forged,
truncated and reused session ids."""

from __future__ import annotations

import asyncio
import inspect
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from portal_pulse.core import web as core_web
from portal_pulse.core.secret import Secret
from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN
from tests.metric_samples import total as metric_total
from tests.reliability.load import Call, LoadResult, reason, run_load
from tests.reliability.probe import create_session, get_json, get_text, request
from tests.reliability.procs import PORTAL_ORIGIN, Cluster, ServiceProcess

SERVICES = Path(__file__).resolve().parents[2] / "services"


def hit_from(ip: str, visitor: str, index: int, kind: str = "pageview") -> Call:
    body = {"site": "default", "kind": kind, "path": f"/article/{index % 50}", "visitor": visitor,
            "id": f"{visitor}-{kind}-{index}"}
    return Call("POST", "/v1/hit", f"{visitor}-{index}", json=body, headers={"X-Forwarded-For": ip})


async def wait_clear_of_boundary(period: float, margin: float) -> None:
    """The limit buckets follow the wall clock of real service processes: start a burst
    well inside one bucket (waiting out at most ``margin`` seconds) so the count is exact."""
    into = time.time() % period
    if into > period - margin:
        await asyncio.sleep(period - into + 0.1)


async def wait_clear_of_minute_boundary(margin: float = 4.0) -> None:
    await wait_clear_of_boundary(60, margin)


async def rate_limited_in_metrics(procs: list[ServiceProcess]) -> float:
    total = 0.0
    for proc in procs:
        text = await get_text(f"{proc.url}/metrics")
        total += metric_total(text, "pulse_ingest_hits_total", result="rate_limited")
    return total


async def two_counters(shared: Cluster) -> list[ServiceProcess]:
    return [shared.service("counter", name="counter-a"), shared.service("counter", name="counter-b")]


@pytest.mark.slow
async def test_one_visitor_cannot_inflate_pageviews_across_two_processes(shared: Cluster) -> None:
    procs = await two_counters(shared)
    await wait_clear_of_minute_boundary()
    # 300 pageviews in a burst from one visitor, alternating between the two processes
    burst = await run_load([p.url for p in procs], lambda i: hit_from("203.0.113.10", "greedy", i),
                           total=300, concurrency=8)
    assert {a.status for a in burst.answers} == {204}, burst.summary()
    counted = [a for a in burst.answers if reason(a) is None]
    limited = [a for a in burst.answers if reason(a) == "rate_limited"]
    assert len(counted) == 120, "the default allows 120 hits per visitor per minute, whichever process"
    assert len(limited) == 180
    assert all(a.counted == "0; reason=rate_limited" for a in limited)
    assert {a.target for a in limited} == {p.url for p in procs}  # both processes refused
    stats = await get_json(f"{procs[0].url}/v1/stats?site=default")
    assert stats["pageviews"]["total"] == 120 and stats["total"] == 1
    assert await rate_limited_in_metrics(procs) == 180


@pytest.mark.slow
async def test_rotating_visitor_ids_cannot_inflate_visits_but_an_office_is_counted(shared: Cluster) -> None:
    """One address inventing a new visitor per hit is stopped at the per-IP visit limit
    (3000 a day-hour by default); an office of 400 people behind one NAT address,
    each with a few pageviews and heartbeats, is counted in full."""
    procs = await two_counters(shared)
    urls = [p.url for p in procs]
    await wait_clear_of_minute_boundary()

    def office(i: int) -> Call:
        step, person = divmod(i, 400)  # everyone's first pageview, then heartbeats, then pageviews
        return hit_from("198.51.100.20", f"office-{person}", i, ("pageview", "heartbeat", "pageview")[step])

    staff = await run_load(urls, office, total=1200, concurrency=8)
    assert {a.status for a in staff.answers} == {204}, staff.summary()
    assert [reason(a) for a in staff.answers if reason(a)] == []
    stats = await get_json(f"{urls[0]}/v1/stats?site=default")
    assert stats["total"] == 400 and stats["pageviews"]["total"] == 800

    await wait_clear_of_boundary(3600, 20.0)  # the per-IP visit bucket is hourly: stay inside one
    await wait_clear_of_minute_boundary(10.0)
    forged = await run_load(urls, lambda i: hit_from("203.0.113.66", f"forged-{i}", i), total=3100,
                            concurrency=8, max_seconds=40)
    assert {a.status for a in forged.answers} == {204}, forged.summary()
    limited = [a for a in forged.answers if reason(a) == "rate_limited"]
    assert len(limited) == 100, "3000 new visits per address and hour, then refused"
    # the stats are cached for up to a second: read until the cache has turned over
    deadline = time.monotonic() + 5
    after = await get_json(f"{urls[0]}/v1/stats?site=default")
    while after["total"] == stats["total"] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        after = await get_json(f"{urls[0]}/v1/stats?site=default")
    assert after["total"] - stats["total"] == 3000
    assert await rate_limited_in_metrics(procs) == 100


async def test_cross_origin_calls_from_unconfigured_origins_are_refused(shared: Cluster) -> None:
    counter = shared.service("counter")
    session = shared.service("session")
    body = {"site": "default", "kind": "pageview", "path": "/x", "visitor": "cors"}
    for proc, path in ((counter, "/v1/hit"), (session, "/v1/sessions")):
        preflight = {"Access-Control-Request-Method": "POST"}
        status, headers, _ = await request("OPTIONS", proc.url + path, headers={**preflight, "Origin": "http://evil.test"})
        assert status == 403 and "Access-Control-Allow-Origin" not in headers, (proc.kind, status)
        status, headers, _ = await request("OPTIONS", proc.url + path, headers={**preflight, "Origin": PORTAL_ORIGIN})
        assert status == 204 and headers["Access-Control-Allow-Origin"] == PORTAL_ORIGIN, (proc.kind, status)

    status, headers, _ = await request("POST", f"{counter.url}/v1/hit", json=body, headers={"Origin": "http://evil.test"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    # an origin configured for another site may not count for this one
    status, _, _ = await request("POST", f"{counter.url}/v1/hit", json=body, headers={"Origin": "http://news.test"})
    assert status == 403
    status, headers, _ = await request("POST", f"{counter.url}/v1/hit", json=body, headers={"Origin": PORTAL_ORIGIN})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == PORTAL_ORIGIN
    stats = await get_json(f"{counter.url}/v1/stats?site=default")
    assert stats["pageviews"]["total"] == 1  # only the configured origin's hit counted

    created = await create_session(session.url, SERVICE_TOKEN)
    status, headers, _ = await request("GET", f"{session.url}/v1/sessions/{created['id']}",
                                       headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in headers


async def test_protected_endpoints_refuse_missing_and_wrong_tokens(shared: Cluster) -> None:
    counter = shared.service("counter")
    session = shared.service("session")
    baseline = f"{counter.url}/v1/admin/sites/default/baseline"
    wrong = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
        {"Authorization": f"Bearer {SERVICE_TOKEN}"},  # the other service's token
        {"Authorization": "Bearer \u00e9\u00e9"},
    ]
    for headers in wrong:
        status, answer, body = await request("PUT", baseline, json={"total": 1_000_000}, headers=headers)
        assert status == 401 and "Bearer" in answer.get("WWW-Authenticate", ""), (headers, status, body)
    assert (await get_json(f"{counter.url}/v1/stats?site=default"))["total"] == 0
    status, _, body = await request("PUT", baseline, json={"total": 1_000_000},
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200, body
    assert (await get_json(f"{counter.url}/v1/stats?site=default"))["total"] == 1_000_000

    for headers in [*wrong[:7], {"Authorization": f"Bearer {ADMIN_TOKEN}"}]:
        status, _, body = await request("POST", f"{session.url}/v1/sessions", json={}, headers=headers)
        assert status == 401, (headers, status, body)
    assert (await create_session(session.url, SERVICE_TOKEN))["state"] == "active"


def test_tokens_are_compared_in_constant_time() -> None:
    """The one comparison is ``hmac.compare_digest`` in ``Secret.matches``; both protected
    endpoints go through ``require_token``, and no service compares a token with ``==``."""
    assert "hmac.compare_digest(" in inspect.getsource(Secret.matches)
    assert "expected.matches(token)" in inspect.getsource(core_web.require_token)
    admin = (SERVICES / "counter" / "admin_handlers.py").read_text()
    assert "require_token(request, settings.admin_token)" in admin
    sessions = (SERVICES / "session" / "handlers.py").read_text()
    assert "require_token(request, settings.service_token)" in sessions
    suspicious = re.compile(r"(token|secret)\w*(\.reveal\(\))?\s*[!=]=|[!=]=\s*\w*(token|secret)", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(SERVICES)}:{number}: {line.strip()}"
        for path in SERVICES.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if suspicious.search(line) and "is None" not in line and "is not None" not in line
    ]
    assert not offenders, offenders


async def _all_answers(url: str, session_id: str) -> dict[str, int]:
    calls = {
        "get": ("GET", f"/v1/sessions/{session_id}"),
        "activity": ("POST", f"/v1/sessions/{session_id}/activity"),
        "keepalive": ("POST", f"/v1/sessions/{session_id}/keepalive"),
        "delete": ("DELETE", f"/v1/sessions/{session_id}"),
        "events": ("GET", f"/v1/sessions/{session_id}/events"),
    }
    answers = {}
    for name, (method, path) in calls.items():
        status, _, _ = await request(method, url + path, seconds=3)
        answers[name] = status
    return answers


async def test_guessed_forged_truncated_and_reused_session_ids(shared: Cluster) -> None:
    session = shared.service("session")
    victim: dict[str, Any] = await create_session(session.url, SERVICE_TOKEN, subject="victim")
    other: dict[str, Any] = await create_session(session.url, SERVICE_TOKEN, subject="bystander")
    vid = victim["id"]
    assert len(vid) >= 22  # >= 128 random bits, URL-safe base64

    def flip(text: str, at: int) -> str:
        return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]

    bad_ids = {
        "guessed": secrets.token_urlsafe(32),
        "forged first char": flip(vid, 0),
        "forged last char": flip(vid, len(vid) - 1),
        "truncated": vid[:-1],
        "extended": vid + "A",
        "case-swapped": vid.swapcase(),
        "hex of the same length": "0" * len(vid),
        "path traversal": "..%2F..%2Fmetrics",
    }
    for name, bad in bad_ids.items():
        answers = await _all_answers(session.url, bad)
        assert set(answers.values()) == {404}, (name, answers)

    status, _, _ = await request("DELETE", f"{session.url}/v1/sessions/{vid}")
    assert status == 204
    after = await _all_answers(session.url, vid)
    assert after["activity"] == after["keepalive"] == after["delete"] == 410, after
    # a status read and the event stream still answer, with the final state (never revived)
    assert after["get"] == after["events"] == 200, after
    assert (await get_json(f"{session.url}/v1/sessions/{vid}"))["state"] == "ended"

    bystander = await get_json(f"{session.url}/v1/sessions/{other['id']}")
    assert bystander["state"] == "active"
    assert bystander["remaining"] <= other["remaining"]  # untouched: nothing extended it


async def test_rate_limit_refusals_are_counted_per_reason(shared: Cluster) -> None:
    """A refused hit is never silent: the header says why and the metric counts it."""
    counter = shared.service("counter", {"PULSE_COUNTER_MAX_HITS_PER_VISITOR_PER_MINUTE": "3"})
    await wait_clear_of_minute_boundary()
    result: LoadResult = await run_load([counter.url], lambda i: hit_from("203.0.113.5", "tight", i), total=5,
                                        concurrency=1)
    assert [reason(a) for a in result.answers] == [None, None, None, "rate_limited", "rate_limited"]
    assert await rate_limited_in_metrics([counter]) == 2
