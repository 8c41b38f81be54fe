"""Every Redis key this project writes starts here.

Keys of one site carry the site as a Redis Cluster hash tag (``{site}``), so that one
site's writes fit in one atomic script and sites can spread over a cluster. Session keys
share the tag ``{session}``: transitions must update the session, the due-time index and
the event stream in one atomic script, which needs one slot.
"""

from __future__ import annotations

import hashlib

PREFIX = "pulse"


def site_prefix(site: str) -> str:
    """Prefix of every key of one site, e.g. ``pulse:{default}:``."""
    return f"{PREFIX}:{{{site}}}:"


SESSION_PREFIX = f"{PREFIX}:{{session}}:"
#: The Redis Stream of session transitions that portal back ends read.
SESSION_EVENTS_STREAM = f"{SESSION_PREFIX}events"
#: Pub/sub channel that carries the same transitions to every service process.
SESSION_EVENTS_CHANNEL = f"{PREFIX}:session-events"


def digest(value: str, length: int = 32) -> str:
    """A one-way, fixed-length name for anything that must not be stored raw."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=length // 2).hexdigest()
