"""Injectable time: every window, midnight and timeout reads the clock it is given."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

#: A wait of so many seconds (``asyncio.sleep`` in production): loops that back off or
#: pause take one, so that tests drive them step by step without waiting.
Sleep = Callable[[float], Awaitable[None]]


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch (UTC)."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock, used in production."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; used by tests and benchmarks."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        self._now = float(when)
