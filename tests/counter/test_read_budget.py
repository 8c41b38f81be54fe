"""The series read budget (pure: the time is a parameter)."""

from __future__ import annotations

import pytest

from portal_pulse.counter.read_budget import ReadBudget


def test_a_burst_passes_then_reads_wait_their_turn_then_are_refused() -> None:
    budget = ReadBudget(per_second=10, burst=3)
    assert [budget.reserve(100.0, 1.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    waits = [budget.reserve(100.0, 1.0) for _ in range(10)]
    assert waits == pytest.approx([0.1 * n for n in range(1, 11)])
    assert budget.reserve(100.0, 1.0) is None  # a refused read takes no turn
    assert budget.reserve(101.0, 1.0) == pytest.approx(0.1)


def test_an_idle_budget_refills_to_its_burst_only() -> None:
    budget = ReadBudget(per_second=2, burst=2)
    assert budget.reserve(0.0, 0.0) == 0.0
    assert budget.reserve(1000.0, 0.0) == 0.0 and budget.reserve(1000.0, 0.0) == 0.0
    assert budget.reserve(1000.0, 0.0) is None
