"""Views and downloads of one path (each counted once per visit)."""

from __future__ import annotations

from redis.asyncio import Redis

from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.visitor import path_digest


async def read_page(client: Redis, site: str, path: str) -> dict[str, object]:
    views, downloads = await client.hmget(SiteKeys(site).page(path_digest(path)), ["views", "downloads"])
    return {"site": site, "path": path, "views": int(views or 0), "downloads": int(downloads or 0)}
