"""The HTTP API against a real server, with a manual clock (no sleeping for time to pass)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from redis.asyncio import Redis

from portal_pulse.core.clock import ManualClock
from portal_pulse.session.app_state import SCHEDULER, STORE
from portal_pulse.session.keys import session_events_stream
from portal_pulse.session.state_machine import Timing
from tests.metric_samples import sample
from tests.session.session_support import (
    AUTH,
    Client,
    ClientFactory,
    create,
    due_count,
    session_settings,
    start,
    stream_events,
)


@pytest.fixture
async def client(redis_url: str, make_client: ClientFactory, clock: ManualClock) -> Client:
    return await start(make_client, session_settings(redis_url), clock)


async def status_of(client: Client, session_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/sessions/{session_id}")
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    assert set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code
    return body


class TestCreate:
    async def test_defaults_and_shape(self, client: Client) -> None:
        response = await client.post("/v1/sessions", headers=AUTH)
        assert response.status == 201
        body = await response.json()
        assert set(body) == {"id", "state", "remaining", "prompt_in", "idle_timeout", "prompt_seconds", "server_time",
                             "version"}
        assert len(body["id"]) == 43
        assert body["version"] == 1
        assert body["state"] == "active"
        assert (body["remaining"], body["prompt_in"]) == (60, 50)
        assert (body["idle_timeout"], body["prompt_seconds"]) == (60, 10)
        assert response.headers["Cache-Control"] == "no-store"

    async def test_body_overrides_timing(self, client: Client) -> None:
        body = await create(client, subject="user-42", idle_timeout=300, prompt_seconds=30, max_lifetime=3600)
        timing = (body["remaining"], body["prompt_in"], body["idle_timeout"], body["prompt_seconds"])
        assert timing == (300, 270, 300, 30)

    async def test_ids_are_unique(self, client: Client) -> None:
        ids = {(await create(client))["id"] for _ in range(20)}
        assert len(ids) == 20

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eA=="},
                                         {"Authorization": "Bearer "}])
    async def test_token_required(self, client: Client, headers: dict[str, str]) -> None:
        response = await client.post("/v1/sessions", json={}, headers=headers)
        await error_of(response, 401, "unauthorized")
        assert "Bearer" in response.headers["WWW-Authenticate"]

    @pytest.mark.parametrize(
        "body",
        [
            {"prompt_seconds": 60, "idle_timeout": 60},
            {"prompt_seconds": 61, "idle_timeout": 60},
            {"idle_timeout": 1},
            {"idle_timeout": 10**9},
            {"idle_timeout": "60"},
            {"idle_timeout": 60.5},
            {"idle_timeout": True},
            {"idle_timeout": None},
            {"prompt_seconds": 0},
            {"max_lifetime": -1},
            {"subject": "x" * 201},
            {"subject": 5},
            {"unknown": 1},
            [],
            "text",
            123,
        ],
    )
    async def test_bad_bodies_are_400(self, client: Client, body: Any) -> None:
        await error_of(await client.post("/v1/sessions", json=body, headers=AUTH), 400)

    async def test_malformed_json_and_types(self, client: Client) -> None:
        json_type = {**AUTH, "Content-Type": "application/json"}
        await error_of(await client.post("/v1/sessions", data=b"{", headers=json_type), 400, "invalid_json")
        await error_of(await client.post("/v1/sessions", data=b"{}", headers={**AUTH, "Content-Type": "text/plain"}),
                       415)
        lone_surrogate = b'{"subject": "\\ud800"}'
        # msgspec refuses a lone surrogate while decoding: never stored, never a 500
        await error_of(await client.post("/v1/sessions", data=lone_surrogate, headers=json_type), 400,
                       "invalid_json")

    async def test_body_is_capped(self, client: Client) -> None:
        big = b'{"subject": "' + b"x" * 5000 + b'"}'
        headers = {**AUTH, "Content-Type": "application/json"}
        await error_of(await client.post("/v1/sessions", data=big, headers=headers), 413)


class TestIds:
    @pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("POST", "/activity"),
                                                   ("POST", "/keepalive"), ("GET", "/events")])
    async def test_forged_truncated_guessed_ids_are_404(self, client: Client, method: str, suffix: str) -> None:
        real = (await create(client))["id"]
        for forged in [real[:-1], real + "A", real[:-1] + ("A" if real[-1] != "A" else "B"),
                       secrets.token_urlsafe(32), "../../etc", "%00", "x" * 43 + "%2F", "💥" * 10]:
            response = await client.request(method, f"/v1/sessions/{forged}{suffix}")
            await error_of(response, 404)
        assert (await status_of(client, real))["state"] == "active"  # the real one is untouched


class TestReadsNeverExtend:
    async def test_get_does_not_move_time(self, client: Client, clock: ManualClock) -> None:
        sid = (await create(client))["id"]
        clock.advance(30)
        for _ in range(3):
            assert (await status_of(client, sid))["remaining"] == 30
        clock.advance(20)
        body = await status_of(client, sid)
        assert (body["state"], body["remaining"], body["prompt_in"]) == ("prompt", 10, 0)


class TestVersions:
    async def test_every_change_gives_a_higher_version_and_reads_give_the_same(
        self, client: Client, clock: ManualClock
    ) -> None:
        """Views are ordered by the session's version (every change, on any process, raises
        it), not by the answering process's clock: session.js and the event streams rely on it."""
        sid = (await create(client))["id"]
        assert (await status_of(client, sid))["version"] == 1
        clock.advance(10)
        activity = await (await client.post(f"/v1/sessions/{sid}/activity")).json()
        assert activity["version"] == 2
        clock.advance(51)
        await client.app[SCHEDULER].run_once()  # the prompt: a transition
        prompt = await status_of(client, sid)
        assert (prompt["state"], prompt["version"]) == ("prompt", 3)
        assert (await status_of(client, sid))["version"] == 3  # reads change nothing
        await error_of(await client.post(f"/v1/sessions/{sid}/activity"), 409, "prompt_open")
        assert (await status_of(client, sid))["version"] == 3  # neither does a refused touch
        keepalive = await (await client.post(f"/v1/sessions/{sid}/keepalive")).json()
        assert (keepalive["state"], keepalive["version"]) == ("active", 4)
        clock.advance(1)
        again = await (await client.post(f"/v1/sessions/{sid}/keepalive")).json()
        assert again["version"] == 5


class TestActivityAndKeepalive:
    async def test_activity_extends_an_active_session_silently(
        self, client: Client, clock: ManualClock, redis_client: Redis
    ) -> None:
        sid = (await create(client))["id"]
        clock.advance(40)
        response = await client.post(f"/v1/sessions/{sid}/activity")
        assert response.status == 200
        body = await response.json()
        assert (body["state"], body["remaining"], body["prompt_in"]) == ("active", 60, 50)
        assert [e["type"] for e in await stream_events(redis_client)] == ["created"]

    async def test_activity_in_prompt_is_409_and_does_not_extend(self, client: Client, clock: ManualClock) -> None:
        sid = (await create(client))["id"]
        clock.advance(55)
        await error_of(await client.post(f"/v1/sessions/{sid}/activity"), 409, "prompt_open")
        assert (await status_of(client, sid))["remaining"] == 5

    async def test_keepalive_in_prompt_extends_and_announces(
        self, client: Client, clock: ManualClock, redis_client: Redis
    ) -> None:
        sid = (await create(client))["id"]
        clock.advance(55)
        await client.app[SCHEDULER].run_once()
        response = await client.post(f"/v1/sessions/{sid}/keepalive")
        assert response.status == 200
        body = await response.json()
        assert (body["state"], body["remaining"], body["prompt_in"]) == ("active", 60, 50)
        assert [e["type"] for e in await stream_events(redis_client)] == ["created", "prompt", "extended"]

    async def test_keepalive_while_active_extends(self, client: Client, clock: ManualClock) -> None:
        sid = (await create(client))["id"]
        clock.advance(10)
        body = await (await client.post(f"/v1/sessions/{sid}/keepalive")).json()
        assert body["remaining"] == 60

    async def test_a_click_inside_grace_still_counts(self, client: Client, clock: ManualClock) -> None:
        sid = (await create(client))["id"]
        clock.advance(61.5)  # countdown over, grace (2 s) not
        assert (await status_of(client, sid))["state"] == "prompt"
        assert (await client.post(f"/v1/sessions/{sid}/keepalive")).status == 200

    @pytest.mark.parametrize("path", ["activity", "keepalive"])
    async def test_expired_is_never_revived_even_before_the_scheduler_runs(
        self, client: Client, clock: ManualClock, redis_client: Redis, path: str
    ) -> None:
        sid = (await create(client))["id"]
        clock.advance(62)  # past the grace window; the scheduler has not run
        await error_of(await client.post(f"/v1/sessions/{sid}/{path}"), 410, "session_expired")
        await error_of(await client.post(f"/v1/sessions/{sid}/{path}"), 410, "session_expired")
        assert (await status_of(client, sid))["state"] == "expired"
        clock.advance(1)
        await client.app[SCHEDULER].run_once()
        types = [e["type"] for e in await stream_events(redis_client)]
        assert types == ["created", "expired"]  # announced once, by whoever saw it first

    async def test_logout_then_410(self, client: Client, redis_client: Redis) -> None:
        sid = (await create(client))["id"]
        response = await client.delete(f"/v1/sessions/{sid}")
        assert response.status == 204
        assert (await status_of(client, sid))["state"] == "ended"
        for method, path in [("POST", "/keepalive"), ("POST", "/activity"), ("DELETE", "")]:
            await error_of(await client.request(method, f"/v1/sessions/{sid}{path}"), 410, "session_ended")
        assert [e["type"] for e in await stream_events(redis_client)] == ["created", "ended"]
        assert await due_count(redis_client) == 0

    async def test_sessions_end_after_12_hours_by_default_whatever_the_activity(
        self, redis_url: str, make_client: ClientFactory, clock: ManualClock
    ) -> None:
        scripted = await start(make_client, session_settings(redis_url, idle_timeout_seconds=1800), clock)
        sid = (await create(scripted))["id"]
        for _ in range(28):  # a script keeping it active every 25 minutes, for 11 h 40 min
            clock.advance(1500)
            assert (await scripted.post(f"/v1/sessions/{sid}/activity")).status == 200
        clock.advance(1300)  # 12 h 1 min 40 s after creation, 22 min after the last activity
        await error_of(await scripted.post(f"/v1/sessions/{sid}/activity"), 410, "session_expired")

    async def test_a_lifetime_of_0_set_explicitly_means_none(
        self, redis_url: str, make_client: ClientFactory, clock: ManualClock
    ) -> None:
        for scripted, body in (
            (await start(make_client, session_settings(redis_url, idle_timeout_seconds=7200, max_lifetime_seconds=0),
                         clock), {}),
            (await start(make_client, session_settings(redis_url, idle_timeout_seconds=7200), clock),
             {"max_lifetime": 0}),
        ):
            sid = (await create(scripted, **body))["id"]
            for _ in range(30):  # 25 hours
                clock.advance(3000)
                assert (await scripted.post(f"/v1/sessions/{sid}/keepalive")).status == 200

    async def test_max_lifetime_is_absolute(self, client: Client, clock: ManualClock) -> None:
        sid = (await create(client, max_lifetime=100))["id"]
        for _ in range(3):
            clock.advance(30)
            assert (await client.post(f"/v1/sessions/{sid}/keepalive")).status == 200
        clock.advance(10)
        await error_of(await client.post(f"/v1/sessions/{sid}/keepalive"), 410, "session_expired")


class TestEventStream:
    async def test_fields_of_every_event(self, client: Client, clock: ManualClock, redis_client: Redis) -> None:
        sid = (await create(client, subject="citizen-7"))["id"]
        clock.advance(50)
        await client.app[SCHEDULER].run_once()
        clock.advance(1)
        await client.post(f"/v1/sessions/{sid}/keepalive")
        clock.advance(70)
        await client.app[SCHEDULER].run_once()
        events = await stream_events(redis_client)
        assert [e["type"] for e in events] == ["created", "prompt", "extended", "expired"]
        for event in events:
            assert set(event) == {"type", "session", "subject", "at", "state", "remaining"}
            assert event["subject"] == "citizen-7"
            assert len(event["session"]) == 32
            assert sid not in event.values()
        at = [int(e["at"]) for e in events]
        t0 = int(clock.now() * 1000) - 121_000
        assert at == [t0, t0 + 50_000, t0 + 51_000, t0 + 121_000]
        assert [(e["state"], float(e["remaining"])) for e in events] == [
            ("active", 60.0), ("prompt", 10.0), ("active", 60.0), ("expired", 0.0)
        ]

    async def test_stream_is_capped(self, redis_url: str, make_client: ClientFactory, clock: ManualClock,
                                    redis_client: Redis) -> None:
        client = await start(make_client, session_settings(redis_url, stream_maxlen=10), clock)
        # The cap is per bucket's stream: 300 sessions of one bucket (digests chosen here).
        store, timing = client.app[STORE], Timing(60_000, 10_000, 2_000, 0)
        for i in range(300):
            assert await store.create(f"{0:08x}{i:024x}", "", timing, 0) is not None
        assert await redis_client.xlen(session_events_stream(0)) < 300


async def test_no_raw_session_id_anywhere_in_redis(client: Client, clock: ManualClock, redis_client: Redis) -> None:
    ids = []
    for subject in ("a", "b"):
        sid = (await create(client, subject=subject))["id"]
        ids.append(sid)
        await client.post(f"/v1/sessions/{sid}/activity")
        clock.advance(55)
        await client.app[SCHEDULER].run_once()
        await client.post(f"/v1/sessions/{sid}/keepalive")
    await client.delete(f"/v1/sessions/{ids[0]}")
    dump: list[bytes] = []
    async for key in redis_client.scan_iter(match="*"):
        dump.append(key)
        kind: Any = await redis_client.type(key)
        value: Any
        if kind == b"hash":
            value = await redis_client.hgetall(key)
            dump.extend(x for kv in value.items() for x in kv)
        elif kind == b"zset":
            value = await redis_client.zrange(key, 0, -1)
            dump.extend(value)
        elif kind == b"stream":
            value = await redis_client.xrange(key)
            dump.extend(x for _, fields in value for kv in fields.items() for x in kv)
        else:
            dump.append(await redis_client.dump(key) or b"")
    blob = b"\n".join(dump)
    assert blob
    for sid in ids:
        assert sid.encode() not in blob
        assert sid[:16].encode() not in blob


async def test_cors_only_for_configured_origins(client: Client) -> None:
    sid = (await create(client))["id"]
    ok = await client.get(f"/v1/sessions/{sid}", headers={"Origin": "http://portal.test"})
    assert ok.headers["Access-Control-Allow-Origin"] == "http://portal.test"
    other = await client.get(f"/v1/sessions/{sid}", headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = await client.options(
        f"/v1/sessions/{sid}/keepalive",
        headers={"Origin": "http://portal.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    denied = await client.options(
        f"/v1/sessions/{sid}", headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "DELETE"}
    )
    assert denied.status == 403


async def test_unknown_routes_and_methods_answer_json(client: Client) -> None:
    await error_of(await client.get("/nope"), 404)
    await error_of(await client.put("/v1/sessions"), 405)
    await error_of(await client.post("/v1/sessions/x/activity", data=b"x" * 10_000), 404)
    sid = (await create(client))["id"]
    await error_of(await client.post(f"/v1/sessions/{sid}/activity", data=b"x" * 10_000), 413)


async def test_metrics_health_openapi_and_client(client: Client, clock: ManualClock) -> None:
    sid = (await create(client))["id"]
    await client.post(f"/v1/sessions/{sid}/activity")
    await client.post(f"/v1/sessions/{sid}/keepalive")
    clock.advance(55)
    await client.app[SCHEDULER].run_once()
    await error_of(await client.post(f"/v1/sessions/{sid}/activity"), 409)
    text = await (await client.get("/metrics")).text()
    for name, labels, value in [
        ("pulse_session_transitions_total", {"type": "created"}, 1),
        ("pulse_session_transitions_total", {"type": "extended"}, 1),
        ("pulse_session_transitions_total", {"type": "prompt"}, 1),
        ("pulse_session_transitions_total", {"type": "expired"}, 0),
        ("pulse_session_activity_total", {"result": "ok"}, 1),
        ("pulse_session_activity_total", {"result": "prompt_open"}, 1),
        ("pulse_session_keepalives_total", {"result": "ok"}, 1),
        ("pulse_session_live", {}, 1),
        ("pulse_session_event_streams", {}, 0),
        ("pulse_session_scheduler_lag_seconds_count", {}, 1),
    ]:
        assert sample(text, name, **labels) == value, (name, labels)
    assert sid not in text
    assert 'route="/v1/sessions/{id}/activity"' in text
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.0")
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert set(doc["paths"]["/v1/sessions/{id}/activity"]["post"]["responses"]) == {
        "200", "404", "409", "410", "413", "503"
    }
    js = await client.get("/session.js")
    assert js.status == 200
    assert js.content_type == "application/javascript"
    assert "alertdialog" in await js.text()
