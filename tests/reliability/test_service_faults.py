"""A service process stopped (SIGTERM) or crashed (SIGKILL) under load: what it
acknowledged is in Redis. Acknowledged means durable, whatever happens to the process."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from portal_pulse.session.keys import session_digest
from tests.conftest import SERVICE_TOKEN
from tests.reliability.conftest import NO_LIMITS
from tests.reliability.load import Call, LoadResult, hit_call, run_load
from tests.reliability.probe import create_session, due_sessions, get_json, session_events, until
from tests.reliability.procs import Cluster
from tests.reliability.test_redis_faults import assert_recorded, wait_acked

STOPS = [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGKILL, id="sigkill")]


@pytest.mark.slow
@pytest.mark.parametrize("sig", STOPS)
async def test_counter_stopped_under_load_loses_no_acknowledged_hit(owned: Cluster, sig: signal.Signals) -> None:
    victim = owned.service("counter", NO_LIMITS, name="victim")
    hits = LoadResult()
    load = asyncio.create_task(run_load(
        [victim.url], lambda i: hit_call(f"stop-{sig.name}", i), total=6000, concurrency=16, max_seconds=20,
        into=hits,
    ))
    try:
        await wait_acked(hits, 400)
        victim.signal(sig)
        signalled = time.monotonic()
        code = await victim.wait(15.0)
    finally:
        await asyncio.sleep(0.3)  # let the load see the closed port
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)

    if sig is signal.SIGTERM:
        assert code == 0, victim.log()
        assert time.monotonic() - signalled < 12  # bounded by the runner's shutdown timeout
        assert "stop signal received" in victim.log()
        assert "Traceback" not in victim.log()
    else:
        assert code == -signal.SIGKILL
    # Nothing but acknowledgements, clear refusals and a closed port: no 500s.
    assert set(hits.statuses()) <= {204, 503, -1}, hits.summary()
    assert hits.errors().keys() <= {"ClientConnectorError", "ServerDisconnectedError", "ClientOSError",
                                    "CancelledError"}, hits.summary()

    survivor = owned.service("counter", NO_LIMITS, name="survivor")
    await assert_recorded(survivor, hits.acked)


@pytest.mark.slow
@pytest.mark.parametrize("sig", STOPS)
async def test_session_stopped_under_load_loses_no_created_session(owned: Cluster, sig: signal.Signals) -> None:
    victim = owned.service("session", name="victim")
    auth = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    calls = LoadResult()
    load = asyncio.create_task(run_load(
        [victim.url], lambda i: Call("POST", "/v1/sessions", f"c{i}", json={"subject": f"u{i}"}, headers=auth),
        total=3000, concurrency=8, max_seconds=20, into=calls,
    ))
    try:
        await wait_acked(calls, 150)
        victim.signal(sig)
        code = await victim.wait(15.0)
    finally:
        await asyncio.sleep(0.3)
        load.cancel()
        await asyncio.gather(load, return_exceptions=True)
    assert code == (0 if sig is signal.SIGTERM else -signal.SIGKILL), victim.log()
    assert set(calls.statuses()) <= {201, 503, -1}, calls.summary()
    created = calls.acked
    survivor = owned.service("session", name="survivor")
    # The ids the victim handed out are not in the load's records (only statuses are), so
    # count instead: every 201 is one live session in Redis, read through the survivor.
    assert due_sessions(owned.redis_url) >= len(created)
    stream = session_events(owned.redis_url)
    assert sum(1 for e in stream if e["type"] == "created") >= len(created)
    fresh = await create_session(survivor.url, SERVICE_TOKEN)
    assert (await get_json(f"{survivor.url}/v1/sessions/{fresh['id']}"))["state"] == "active"


def _events(url: str) -> list[dict[str, str]]:
    return session_events(url)


@pytest.mark.slow
async def test_scheduler_of_a_killed_process_is_taken_over_exactly_once(owned: Cluster) -> None:
    """Process A alone runs the scheduler (B is frozen) and is killed in the middle of a
    run of due transitions; B, thawed, announces the rest: every session gets exactly
    one ``prompt`` and one ``expired``, each late by no more than a few seconds."""
    env = {"PULSE_SESSION_GRACE_SECONDS": "0.5"}
    first = owned.service("session", env, name="a")
    second = owned.service("session", env, name="b")
    second.signal(signal.SIGSTOP)
    idle, prompt, grace = 3, 1, 0.5
    ids: list[str] = []
    for _ in range(24):  # due times spread over ~1.2 s
        ids.append((await create_session(first.url, SERVICE_TOKEN, idle_timeout=idle, prompt_seconds=prompt))["id"])
        await asyncio.sleep(0.05)
    digests = {session_digest(i): i for i in ids}

    def announced(kind: str) -> set[str]:
        return {e["session"] for e in _events(owned.redis_url) if e["type"] == kind and e["session"] in digests}

    # Kill A once it has announced some prompts but not all of them.
    await until(lambda: len(announced("prompt")) >= 4, 10.0, "first prompts announced by A")
    await first.kill()
    killed_ms = time.time() * 1000
    pending = len(digests) - len(announced("prompt"))
    await asyncio.sleep(0.5)  # nobody runs the scheduler now
    second.signal(signal.SIGCONT)
    await until(lambda: len(announced("expired")) == len(digests), 10.0, "every session expired")
    await asyncio.sleep(0.5)  # a duplicate, if any, would come now

    events = [e for e in _events(owned.redis_url) if e["session"] in digests]
    by_session: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for event in events:
        by_session.setdefault(event["session"], {}).setdefault(event["type"], []).append(event)
    assert pending > 0, "A announced everything before it died: the takeover was not exercised"
    for digest, kinds in by_session.items():
        assert {k: len(v) for k, v in kinds.items()} == {"created": 1, "prompt": 1, "expired": 1}, digest
        created = int(kinds["created"][0]["at"])
        prompt_late = int(kinds["prompt"][0]["at"]) - (created + (idle - prompt) * 1000)
        expired_late = int(kinds["expired"][0]["at"]) - (created + idle * 1000 + grace * 1000)
        assert 0 <= prompt_late <= 3000, (digest, prompt_late)
        assert 0 <= expired_late <= 3000, (digest, expired_late)
    after_kill = [e for e in events if e["type"] == "prompt" and int(e["at"]) > killed_ms]
    assert after_kill, "B announced nothing"
    for session_id in ids:
        assert (await get_json(f"{second.url}/v1/sessions/{session_id}"))["state"] == "expired"
