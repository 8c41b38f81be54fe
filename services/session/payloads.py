"""What clients send and what the service answers: the create body, its validation,
and the session object every endpoint returns."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from portal_pulse.core.errors import bad_request
from portal_pulse.core.settings import SessionSettings
from portal_pulse.session.state_machine import State, Timing

MIN_IDLE_SECONDS = 2
MAX_IDLE_SECONDS = 7 * 24 * 3600
MAX_PROMPT_SECONDS = 3600
MAX_LIFETIME_SECONDS = 30 * 24 * 3600
MAX_SUBJECT_LENGTH = 200


class CreateSession(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /v1/sessions``; every field is optional (server defaults apply)."""

    subject: Annotated[str, msgspec.Meta(max_length=MAX_SUBJECT_LENGTH)] | msgspec.UnsetType = msgspec.UNSET
    idle_timeout: Annotated[int, msgspec.Meta(ge=MIN_IDLE_SECONDS, le=MAX_IDLE_SECONDS)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    prompt_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_PROMPT_SECONDS)] | msgspec.UnsetType = msgspec.UNSET
    max_lifetime: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIFETIME_SECONDS)] | msgspec.UnsetType = msgspec.UNSET


CREATE_DECODER = msgspec.json.Decoder(CreateSession)


def timing_for(body: CreateSession, defaults: SessionSettings) -> Timing:
    """The session's timing: the body's values over the configured defaults, checked."""
    idle = defaults.idle_timeout_seconds if isinstance(body.idle_timeout, msgspec.UnsetType) else body.idle_timeout
    prompt = defaults.prompt_seconds if isinstance(body.prompt_seconds, msgspec.UnsetType) else body.prompt_seconds
    lifetime = (
        defaults.max_lifetime_seconds if isinstance(body.max_lifetime, msgspec.UnsetType) else body.max_lifetime
    )
    if prompt >= idle:
        raise bad_request(
            f"prompt_seconds ({prompt}) must be shorter than idle_timeout ({idle})", "invalid_timing"
        )
    return Timing(idle * 1000, prompt * 1000, int(defaults.grace_seconds * 1000), lifetime * 1000)


def subject_of(body: CreateSession) -> str:
    # No check for lone surrogates here: msgspec refuses them while decoding (400).
    return "" if isinstance(body.subject, msgspec.UnsetType) else body.subject


def session_object(
    session_id: str, state: State, remaining_ms: int, prompt_in_ms: int, idle_ms: int, prompt_ms: int, now_ms: int,
    version: int,
) -> dict[str, Any]:
    """The session as every endpoint shows it (``remaining`` and ``prompt_in`` in seconds;
    ``version``: views with a higher one are newer, whichever process's clock says what)."""
    return {
        "id": session_id,
        "state": state.value,
        "remaining": remaining_ms / 1000,
        "prompt_in": prompt_in_ms / 1000,
        "idle_timeout": idle_ms // 1000,
        "prompt_seconds": prompt_ms // 1000,
        "server_time": now_ms / 1000,
        "version": version,
    }
