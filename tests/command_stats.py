"""What a test's own server has run, from its ``INFO commandstats``: how tests observe
round trips and cached reads from outside the service (no counters on production objects).

Commands a Lua script runs are counted too (``HMGET`` in ``hit.lua``): a test takes its
baseline after the writes it does not mean to count.
"""

from __future__ import annotations

from redis.asyncio import Redis


async def command_calls(client: Redis, command: str) -> int:
    """How many times the server has run ``command`` (any case) since its stats were reset."""
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command.lower()}", {}).get("calls", 0))
