"""The pure state machine, at and around every boundary."""

from __future__ import annotations

import pytest

from portal_pulse.session.state_machine import Evaluation, State, Timing, evaluate

T = 1_795_687_200_000  # ms
IDLE, PROMPT, GRACE = 1_800_000, 60_000, 3_000
TIMING = Timing(IDLE, PROMPT, GRACE)
PROMPT_AT = T + IDLE - PROMPT
EXPIRE_AT = T + IDLE


def at(now: int, timing: Timing = TIMING, last: int = T, created: int = T, ended: bool = False) -> Evaluation:
    return evaluate(last, created, timing, ended, now)


def test_fresh_session_is_active_with_full_times() -> None:
    assert at(T) == Evaluation(State.ACTIVE, IDLE, IDLE - PROMPT, PROMPT_AT)


def test_last_millisecond_before_the_prompt_is_active() -> None:
    ev = at(PROMPT_AT - 1)
    assert ev.state is State.ACTIVE
    assert ev.prompt_in_ms == 1
    assert ev.remaining_ms == PROMPT + 1


def test_exactly_at_prompt_time_the_prompt_opens() -> None:
    assert at(PROMPT_AT) == Evaluation(State.PROMPT, PROMPT, 0, EXPIRE_AT + GRACE)


def test_last_second_of_the_countdown() -> None:
    ev = at(EXPIRE_AT - 1000)
    assert ev.state is State.PROMPT
    assert ev.remaining_ms == 1000


@pytest.mark.parametrize("offset", [0, 1, GRACE - 1])
def test_inside_grace_still_prompting_with_nothing_remaining(offset: int) -> None:
    assert at(EXPIRE_AT + offset) == Evaluation(State.PROMPT, 0, 0, EXPIRE_AT + GRACE)


@pytest.mark.parametrize("offset", [GRACE, GRACE + 1, 10 * IDLE])
def test_after_grace_expired(offset: int) -> None:
    assert at(EXPIRE_AT + offset) == Evaluation(State.EXPIRED, 0, 0, None)


def test_zero_grace_expires_at_the_end_of_the_countdown() -> None:
    timing = Timing(IDLE, PROMPT, 0)
    assert at(EXPIRE_AT - 1, timing).state is State.PROMPT
    assert at(EXPIRE_AT, timing).state is State.EXPIRED


def test_activity_moves_every_boundary() -> None:
    later = T + 1_000_000
    assert at(PROMPT_AT, last=later).state is State.ACTIVE
    assert at(later + IDLE - PROMPT, last=later).state is State.PROMPT


def test_ended_wins_over_everything() -> None:
    assert at(T, ended=True) == Evaluation(State.ENDED, 0, 0, None)
    assert State.ENDED.is_terminal
    assert State.EXPIRED.is_terminal
    assert not State.PROMPT.is_terminal


class TestMaxLifetime:
    def test_caps_remaining_and_is_the_next_due_time(self) -> None:
        timing = Timing(IDLE, PROMPT, GRACE, max_lifetime_ms=600_000)
        ev = at(T + 100_000, timing, last=T + 100_000)
        assert ev == Evaluation(State.ACTIVE, 500_000, 500_000, T + 600_000)

    def test_expires_exactly_at_the_lifetime_without_grace(self) -> None:
        timing = Timing(IDLE, PROMPT, GRACE, max_lifetime_ms=600_000)
        assert at(T + 599_999, timing, last=T + 599_000).state is State.ACTIVE
        assert at(T + 600_000, timing, last=T + 599_000) == Evaluation(State.EXPIRED, 0, 0, None)

    def test_a_one_millisecond_lifetime_is_a_lifetime(self) -> None:
        assert at(T + 1, Timing(IDLE, PROMPT, GRACE, max_lifetime_ms=1), last=T + 1) == Evaluation(
            State.EXPIRED, 0, 0, None)

    def test_lifetime_inside_the_countdown_cuts_it_short(self) -> None:
        timing = Timing(IDLE, PROMPT, GRACE, max_lifetime_ms=IDLE - 30_000)
        ev = at(PROMPT_AT + 10_000, timing)
        assert ev == Evaluation(State.PROMPT, 20_000, 0, T + IDLE - 30_000)
        assert at(T + IDLE - 30_000, timing).state is State.EXPIRED

    def test_zero_means_no_lifetime(self) -> None:
        assert at(T + 10 * IDLE, Timing(IDLE, PROMPT, GRACE, 0), last=T + 10 * IDLE).state is State.ACTIVE
