"""Session ids and the Redis keys of sessions.

Raw session ids never reach Redis, logs or metrics: a session is stored under the
digest of its id. Every key shares the ``{session}`` hash tag (see ``core.keys``) so one
Lua script can update a session, the due-time index and the event stream atomically.
"""

from __future__ import annotations

import re
import secrets

from services.core.keys import SESSION_EVENTS_CHANNEL, SESSION_EVENTS_STREAM, SESSION_PREFIX, digest

__all__ = [
    "DUE_INDEX",
    "SESSION_EVENTS_CHANNEL",
    "SESSION_EVENTS_STREAM",
    "SESSION_KEY_PREFIX",
    "is_well_formed",
    "new_session_id",
    "session_digest",
    "session_key",
]

#: A session's hash is ``SESSION_KEY_PREFIX + digest(id)``.
SESSION_KEY_PREFIX = f"{SESSION_PREFIX}s:"
#: Sorted set: member = session digest, score = its next transition time (ms).
DUE_INDEX = f"{SESSION_PREFIX}due"

ID_BYTES = 32  # 256 random bits
_ID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32) is always 43 characters


def new_session_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def is_well_formed(session_id: str) -> bool:
    """True for strings shaped like our ids; anything else is answered 404 without I/O."""
    return bool(_ID_SHAPE.match(session_id))


def session_digest(session_id: str) -> str:
    return digest(session_id)


def session_key(session_digest_value: str) -> str:
    return SESSION_KEY_PREFIX + session_digest_value
