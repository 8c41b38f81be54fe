"""The session state machine: pure, no I/O, the clock is a parameter.

All times are integer milliseconds since the epoch, so this module and the Lua prelude
(``session_prelude.lua``, which must agree with it line for line) compute the same
answers; ``tests/session/test_session_lua_parity.py`` checks that they do.

Timeline of one session after its last activity ``L``::

    L ........ L + idle - prompt ........ L + idle ........ L + idle + grace
       active               prompt (countdown)     prompt, remaining 0      expired

An absolute lifetime (``created + max_lifetime``) cuts this short: the session expires
at that instant with no grace, and no prompt is shown if it would start after it (a
click could not extend the session anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    ACTIVE = "active"
    PROMPT = "prompt"
    EXPIRED = "expired"
    ENDED = "ended"

    @property
    def is_terminal(self) -> bool:
        return self in (State.EXPIRED, State.ENDED)


@dataclass(frozen=True, slots=True)
class Timing:
    """A session's own timeouts, in milliseconds (``max_lifetime_ms`` 0: none)."""

    idle_ms: int
    prompt_ms: int
    grace_ms: int
    max_lifetime_ms: int = 0


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: State
    remaining_ms: int
    """Until the session ends (0 during the grace window and once terminal)."""
    prompt_in_ms: int
    """Until the prompt opens; 0 while it is open and once terminal."""
    due_ms: int | None
    """When the state changes next without any input; None once terminal."""


def evaluate(last_activity_ms: int, created_ms: int, timing: Timing, ended: bool, now_ms: int) -> Evaluation:
    """The state of a session at ``now_ms`` from its stored times alone."""
    if ended:
        return Evaluation(State.ENDED, 0, 0, None)
    idle_end = last_activity_ms + timing.idle_ms
    prompt_at = idle_end - timing.prompt_ms
    expire_at = idle_end
    hard_end: int | None = None
    if timing.max_lifetime_ms > 0:
        hard_end = created_ms + timing.max_lifetime_ms
        expire_at = min(expire_at, hard_end)
        if now_ms >= hard_end:
            return Evaluation(State.EXPIRED, 0, 0, None)
    if now_ms < prompt_at:
        due = prompt_at if hard_end is None else min(prompt_at, hard_end)
        return Evaluation(State.ACTIVE, expire_at - now_ms, min(prompt_at, expire_at) - now_ms, due)
    if now_ms < idle_end + timing.grace_ms:
        due = idle_end + timing.grace_ms
        if hard_end is not None:
            due = min(due, hard_end)
        return Evaluation(State.PROMPT, max(0, expire_at - now_ms), 0, due)
    return Evaluation(State.EXPIRED, 0, 0, None)
