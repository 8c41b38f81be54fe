"""Waiting for a service's own background tasks in tests (never for time to pass: the
clock is injected)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Wait (in real time, for the service's own tasks to run) until ``check()`` holds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)
