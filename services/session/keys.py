"""Session ids and the Redis keys of sessions.

Raw session ids never reach Redis, logs or metrics: a session is stored under the
digest of its id. Sessions are spread over ``SESSION_BUCKETS`` buckets (see
``core.keys``): a session's hash, its bucket's due-time index and its bucket's event
stream share the bucket's hash tag, so one Lua script can update all three atomically.
"""

from __future__ import annotations

import re
import secrets

from portal_pulse.core.keys import (
    SESSION_BUCKETS,
    SESSION_EVENTS_CHANNEL,
    SESSION_EVENTS_STREAMS,
    digest,
    session_events_stream,
    session_prefix,
)

__all__ = [
    "DUE_INDEXES",
    "SESSION_BUCKETS",
    "SESSION_EVENTS_CHANNEL",
    "SESSION_EVENTS_STREAMS",
    "bucket_of",
    "due_index",
    "is_well_formed",
    "new_session_id",
    "session_digest",
    "session_events_stream",
    "session_key",
]

ID_BYTES = 32  # 256 random bits
_ID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32) is always 43 characters


def due_index(bucket: int) -> str:
    """Sorted set of one bucket: member = session digest, score = its next transition time (ms)."""
    return f"{session_prefix(bucket)}due"


DUE_INDEXES = tuple(due_index(bucket) for bucket in range(SESSION_BUCKETS))


def new_session_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def is_well_formed(session_id: str) -> bool:
    """True for strings shaped like our ids; anything else is answered 404 without I/O."""
    return bool(_ID_SHAPE.match(session_id))


def session_digest(session_id: str) -> str:
    return digest(session_id)


def bucket_of(session_digest_value: str) -> int:
    """The bucket of a session (from its hex digest: it never changes)."""
    return int(session_digest_value[:8], 16) % SESSION_BUCKETS


def session_key(session_digest_value: str) -> str:
    """A session's hash, in its bucket's slot."""
    return f"{session_prefix(bucket_of(session_digest_value))}s:{session_digest_value}"
