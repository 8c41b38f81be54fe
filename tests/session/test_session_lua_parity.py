"""The Lua prelude's ``evaluate`` must agree with the Python state machine."""

from __future__ import annotations

import random

from redis.asyncio import Redis

from portal_pulse.session.state_machine import State, Timing, evaluate
from portal_pulse.session.store import script_source

PROBE = script_source("end_session.lua").split("local key, digest = KEYS[3]")[0] + """
local state, remaining, prompt_in, due = evaluate(
  tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]),
  tonumber(ARGV[10]), ARGV[11] == '1', NOW)
return {state, remaining, prompt_in, due or -1}
"""


async def test_lua_and_python_agree(redis_client: Redis) -> None:
    rng = random.Random(20261126)
    base = 1_795_687_200_000
    cases = []
    for _ in range(400):
        idle = rng.choice([2_000, 20_000, 60_000, 1_800_000])
        prompt = rng.randrange(1_000, idle, 1_000)
        grace = rng.choice([0, 1_000, 3_000])
        lifetime = rng.choice([0, 0, idle // 2, idle * 3])
        created = base
        last = base + rng.randrange(0, idle * 2)
        now = last + rng.choice([0, idle - prompt - 1, idle - prompt, idle, idle + grace - 1, idle + grace,
                                 rng.randrange(0, idle * 3)])
        ended = rng.random() < 0.05
        cases.append((last, created, Timing(idle, prompt, grace, lifetime), ended, now))
    for last, created, timing, ended, now in cases:
        reply = await redis_client.eval(
            PROBE, 2, "pulse:{session}:probe-due", "pulse:{session}:probe-stream",
            now, 10, "probe", 1000, last, created, timing.idle_ms, timing.prompt_ms, timing.grace_ms,
            timing.max_lifetime_ms, "1" if ended else "0",
        )
        expected = evaluate(last, created, timing, ended, now)
        got = (State(reply[0].decode()), int(reply[1]), int(reply[2]), None if int(reply[3]) == -1 else int(reply[3]))
        assert got == (expected.state, expected.remaining_ms, expected.prompt_in_ms, expected.due_ms), (
            last, created, timing, ended, now,
        )
