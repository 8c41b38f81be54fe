"""The two reference servers every figure is measured against, each run as its own
process with uvloop and the same ``web.AppRunner``/``TCPSite`` settings as
``services/core/runner.py``:

- ``ceiling``: a bare aiohttp app that reads the request body and answers 204 to any
  method and path, so it takes exactly the request shape the service takes;
- ``naive``: ``POST /v1/hit`` and ``GET /v1/hit.gif`` that decode the hit and do one
  Redis ``MULTI``/``EXEC`` pipeline round trip per hit, what most people would write.

Run: ``python -m bench.baselines ceiling --port P`` or ``... naive --port P --redis-url U``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from services.core.runner import SHUTDOWN_TIMEOUT_SECONDS, install_uvloop
from services.core.web import RouteAccessLogger

REDIS_KEY = web.AppKey("redis", Redis)
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


async def answer_204(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


async def not_found(request: web.Request) -> web.Response:
    """The filler bench.lua sends after its measured phase; every service answers it 404."""
    return web.Response(status=404)


def ceiling_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/__bench_filler", not_found)
    app.router.add_route("*", "/{tail:.*}", answer_204)
    return app


async def _record(redis: Redis, site: str, path: str, visitor: str) -> None:
    now = time.time()
    day = time.strftime("%Y%m%d", time.localtime(now))
    prefix = f"naive:{site}:"
    pipe = redis.pipeline(transaction=True)
    pipe.incr(f"{prefix}pageviews:total")
    pipe.incr(f"{prefix}pageviews:{day}")
    pipe.pfadd(f"{prefix}visitors:{day}", visitor)
    pipe.zadd(f"{prefix}online", {visitor: now})
    pipe.set(f"{prefix}last:{visitor}", int(now), ex=1800)
    pipe.hincrby(f"{prefix}views", path, 1)
    await pipe.execute()


async def naive_hit(request: web.Request) -> web.Response:
    try:
        hit = json.loads(await request.read())
        site, path, visitor = str(hit["site"]), str(hit.get("path", "/")), str(hit["visitor"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": {"code": "bad_request", "message": "bad hit"}}, status=400)
    await _record(request.app[REDIS_KEY], site, path, visitor)
    return web.Response(status=204)


async def naive_pixel(request: web.Request) -> web.Response:
    site = request.query.get("site", "default")
    path = request.query.get("path", "/")
    visitor = request.headers.get("User-Agent", "") + (request.remote or "")
    await _record(request.app[REDIS_KEY], site, path, visitor)
    return web.Response(body=GIF, content_type="image/gif", headers={"Cache-Control": "no-store"})


def naive_app(redis_url: str) -> web.Application:
    app = web.Application()

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        app[REDIS_KEY] = Redis.from_url(redis_url, max_connections=64, decode_responses=False)
        yield
        await app[REDIS_KEY].aclose()

    app.cleanup_ctx.append(redis_ctx)
    app.router.add_post("/v1/hit", naive_hit)
    app.router.add_get("/v1/hit.gif", naive_pixel)
    return app


async def serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log_class=RouteAccessLogger,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_address=True)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("kind", choices=("ceiling", "naive"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = ceiling_app() if args.kind == "ceiling" else naive_app(args.redis_url)
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt, web.GracefulExit):
        asyncio.run(serve(app, args.port))


if __name__ == "__main__":
    main()
