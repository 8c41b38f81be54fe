"""Every Redis key this project writes starts here.

Keys of one site carry the site as a Redis Cluster hash tag (``{site}``), so that one
site's writes fit in one atomic script and sites can spread over a cluster.

Sessions are spread over ``SESSION_BUCKETS`` buckets, each its own hash tag
(``{session:<b>}``; a site name cannot contain ``:``, so no site shares it): a session's
bucket is derived from its digest and never changes. A transition updates the session,
its bucket's due-time index and its bucket's event stream in one atomic script, which
needs them in one slot; the buckets spread the sessions over a cluster's masters.
"""

from __future__ import annotations

import hashlib

PREFIX = "pulse"

#: How many buckets sessions are spread over. A constant, not a setting: a session's
#: bucket is its digest modulo this number, so changing it would orphan every live
#: session. 16 slots spread over the masters of any cluster up to 16 masters (on the
#: usual 3-master layout: 6, 6 and 4 buckets), and the scheduler's step costs 16 small
#: reads, grouped per node.
SESSION_BUCKETS = 16


def site_prefix(site: str) -> str:
    """Prefix of every key of one site, e.g. ``pulse:{default}:``."""
    return f"{PREFIX}:{{{site}}}:"


def session_prefix(bucket: int) -> str:
    """Prefix of every key of one session bucket, e.g. ``pulse:{session:3}:``."""
    return f"{PREFIX}:{{session:{bucket}}}:"


def session_events_stream(bucket: int) -> str:
    """The Redis Stream of one bucket's session transitions (portal back ends read them all)."""
    return f"{session_prefix(bucket)}events"


#: The Redis Streams of session transitions, one per bucket, that portal back ends read.
SESSION_EVENTS_STREAMS = tuple(session_events_stream(bucket) for bucket in range(SESSION_BUCKETS))
#: Pub/sub channel that carries the same transitions to every service process.
SESSION_EVENTS_CHANNEL = f"{PREFIX}:session-events"


def digest(value: str, length: int = 32) -> str:
    """A one-way, fixed-length name for anything that must not be stored raw."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=length // 2).hexdigest()
