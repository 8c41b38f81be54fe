"""Concurrent touches and status reads of different sessions travel in one script call
(the core batcher); each must act on its own session (the scripts declare every session
hash in KEYS, in the order of the batch)."""

from __future__ import annotations

import asyncio

from portal_pulse.core.clock import ManualClock
from tests.session.session_support import ClientFactory, create, session_settings, start


async def test_one_batch_touches_and_reads_each_its_own_session(
    redis_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = await start(make_client, session_settings(redis_url), clock)
    timeouts = [60, 300, 120, 600]
    ids = [(await create(client, idle_timeout=t, prompt_seconds=10))["id"] for t in timeouts]
    clock.advance(30)
    touched = await asyncio.gather(*(client.post(f"/v1/sessions/{i}/activity") for i in ids))
    assert [r.status for r in touched] == [200] * len(ids)
    bodies = [await r.json() for r in touched]
    assert [b["remaining"] for b in bodies] == timeouts  # each extended to its own full timeout
    read = await asyncio.gather(*(client.get(f"/v1/sessions/{i}") for i in ids))
    assert [(await r.json())["idle_timeout"] for r in read] == timeouts
    clock.advance(40)  # the first session (60 s) would be prompting by now had it not been touched
    read = await asyncio.gather(*(client.get(f"/v1/sessions/{i}") for i in ids))
    assert [(await r.json())["remaining"] for r in read] == [t - 40 for t in timeouts]
