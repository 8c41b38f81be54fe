"""A per-process budget of series reads: a generic cell rate algorithm (GCRA) that lets
``per_second`` reads through with bursts of ``burst``, makes the next ones wait their
turn (at most ``max_wait_seconds``) and refuses the rest with 429.

Caching makes a repeated series cheap, but each request still costs its HTTP parsing and
answer on the one event loop that also ingests hits: unbounded, a flood of chart reads
takes the loop from the hits. Waiting (not refusing at once) is what bounds a flood: a
client that is refused at once only asks again sooner. Pure: the caller passes the time.
"""

from __future__ import annotations


class ReadBudget:
    def __init__(self, per_second: float, burst: int) -> None:
        self._interval = 1.0 / per_second
        self._tolerance = (burst - 1) * self._interval
        self._tat = float("-inf")  # theoretical arrival time of the next read

    def reserve(self, now: float, max_wait_seconds: float) -> float | None:
        """Seconds this read must wait before it runs, or None if that is over ``max_wait_seconds``."""
        tat = max(self._tat, now)
        wait = max(0.0, tat - self._tolerance - now)
        if wait > max_wait_seconds:
            return None
        self._tat = tat + self._interval
        return wait
