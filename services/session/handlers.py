"""HTTP handlers of the session API. They parse and check input, call the store, count
what happened and shape the answer; state rules live in the state machine and scripts."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from portal_pulse.core.errors import ApiError, not_found
from portal_pulse.core.web import decode_json, json_response, read_body, require_json_type, require_token
from portal_pulse.session.app_state import METRICS, SETTINGS, STORE, now_ms
from portal_pulse.session.keys import is_well_formed, new_session_id, session_digest
from portal_pulse.session.payloads import CREATE_DECODER, CreateSession, session_object, subject_of, timing_for
from portal_pulse.session.state_machine import State
from portal_pulse.session.store import Outcome, Result

NO_STORE = {"Cache-Control": "no-store"}


def session_ref(request: web.Request) -> tuple[str, str]:
    """``(id, digest)`` of the session in the path; malformed ids are unknown ids."""
    session_id = request.match_info["id"]
    if not is_well_formed(session_id):
        raise unknown_session()
    return session_id, session_digest(session_id)


def unknown_session() -> ApiError:
    return not_found("no such session", "session_not_found")


def gone(state: State | None) -> ApiError:
    if state is State.ENDED:
        return ApiError(410, "session_ended", "the session was ended (signed out)")
    return ApiError(410, "session_expired", "the session has expired")


def answer(request: web.Request, session_id: str, result: Result, status: int = 200) -> web.Response:
    assert result.state is not None
    body = session_object(
        session_id, result.state, result.remaining_ms, result.prompt_in_ms, result.idle_ms, result.prompt_ms,
        now_ms(request.app), result.version,
    )
    return json_response(body, status=status, headers=NO_STORE)


async def create_session(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    require_token(request, settings.service_token)
    if request.body_exists:
        require_json_type(request)  # checked before reading: it needs the unread body
    raw = await read_body(request, settings.session.max_body_bytes, settings.http.header_timeout_seconds)
    body = decode_json(raw, CREATE_DECODER) if raw.strip() else CreateSession()
    timing = timing_for(body, settings.session)
    subject = subject_of(body)
    session_id = new_session_id()  # 256 random bits: a collision is not worth a retry loop
    result = await request.app[STORE].create(session_digest(session_id), subject, timing, now_ms(request.app))
    if result is None:  # the script never overwrites an existing session, however unlikely
        raise ApiError(503, "unavailable", "could not allocate a session id; retry", {"Retry-After": "1"})
    request.app[METRICS].count_transitions(result.emitted)
    return answer(request, session_id, result, status=201)


async def get_session(request: web.Request) -> web.Response:
    session_id, digest = session_ref(request)
    stored = await request.app[STORE].read(digest)
    if stored is None:
        raise unknown_session()
    now = now_ms(request.app)
    ev = stored.at(now)
    body = session_object(
        session_id, ev.state, ev.remaining_ms, ev.prompt_in_ms, stored.timing.idle_ms, stored.timing.prompt_ms, now,
        stored.version,
    )
    return json_response(body, headers=NO_STORE)


async def _touch(request: web.Request, mode: Literal["activity", "keepalive"]) -> web.Response:
    session_id, digest = session_ref(request)
    settings = request.app[SETTINGS]
    await read_body(request, settings.session.max_body_bytes, settings.http.header_timeout_seconds)  # content ignored
    metrics = request.app[METRICS]
    result = await request.app[STORE].touch(digest, mode, now_ms(request.app))
    if result.emitted:
        metrics.count_transitions(result.emitted)
    if result.outcome is Outcome.MISSING:
        raise unknown_session()
    if result.outcome is Outcome.GONE:
        metrics.count_touch(mode, "gone")
        raise gone(result.state)
    if result.outcome is Outcome.PROMPT_OPEN:
        metrics.count_touch(mode, "prompt_open")
        raise ApiError(409, "prompt_open", "the inactivity prompt is open: only the keep-alive click extends it")
    metrics.count_touch(mode, "ok")
    return answer(request, session_id, result)


async def report_activity(request: web.Request) -> web.Response:
    return await _touch(request, "activity")


async def keep_alive(request: web.Request) -> web.Response:
    return await _touch(request, "keepalive")


async def end_session(request: web.Request) -> web.Response:
    _, digest = session_ref(request)
    result = await request.app[STORE].end(digest, now_ms(request.app))
    request.app[METRICS].count_transitions(result.emitted)
    if result.outcome is Outcome.MISSING:
        raise unknown_session()
    if result.outcome is Outcome.GONE:
        raise gone(result.state)
    return web.Response(status=204, headers=NO_STORE)
