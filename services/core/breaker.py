"""A circuit breaker for one path to storage (a server, or one cluster node).

Closed, it lets work through. The first failed call (a timeout, a refused connection)
opens it: new work is refused at once with 503 instead of waiting behind calls that
will time out too. After ``open_seconds`` one caller is let through as a probe; its
success closes the breaker, its failure opens it again for another ``open_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    PROBING = "probing"


class CircuitBreaker:
    __slots__ = ("_monotonic", "_open_seconds", "_reopen_at", "state")

    def __init__(self, open_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._open_seconds = open_seconds
        self._monotonic = monotonic
        self._reopen_at = 0.0
        self.state = BreakerState.CLOSED

    def allow(self) -> bool:
        """May one more piece of work go in? Past the open period it becomes the probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self._monotonic() >= self._reopen_at:
            self.state = BreakerState.PROBING
            return True
        return False

    def answered(self) -> None:
        """The server answered a PING: past the open period, close."""
        if self.state is BreakerState.OPEN and self._monotonic() >= self._reopen_at:
            self.state = BreakerState.CLOSED

    def refusing(self) -> bool:
        """Open or probing: new work is refused now."""
        return self.state is not BreakerState.CLOSED

    def succeeded(self) -> None:
        self.state = BreakerState.CLOSED

    def failed(self) -> None:
        self.state = BreakerState.OPEN
        self._reopen_at = self._monotonic() + self._open_seconds

    @property
    def is_open(self) -> bool:
        return self.state is not BreakerState.CLOSED
