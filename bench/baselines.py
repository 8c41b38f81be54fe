"""The two reference servers every figure is measured against, each run as its own
process with uvloop and the same ``web.AppRunner``/``TCPSite`` settings as
``services/core/runner.py``:

- ``ceiling``: a bare aiohttp app that reads the request body and answers 204 to any
  method and path, so it takes exactly the request shape the service takes;
- ``naive``: ``POST /v1/hit`` and ``GET /v1/hit.gif`` that decode the hit and do one
  Redis ``MULTI``/``EXEC`` pipeline round trip per hit, what most people would write;
- ``minimal``: the limit of this design. The same routes as the services (hits, pixel,
  session status and activity); each handler queues its item and waits; the first item
  of a loop turn schedules a commit, which takes everything queued and sends it as one
  ``EVALSHA`` (``bench/lua/minimal.lua``), at most two commits in flight; every handler
  answers after Redis did. No validation, bot check, digests, metrics or logs: what is
  left is aiohttp, redis-py and one script call per batch.

Run: ``python -m bench.baselines ceiling|naive|minimal --port P [--redis-url U]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from portal_pulse.core.runner import SHUTDOWN_TIMEOUT_SECONDS, install_uvloop
from portal_pulse.core.web import RouteAccessLogger

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


MINIMAL_SCRIPT = (Path(__file__).parent / "lua" / "minimal.lua").read_text()
MINIMAL_KEY = "bench:minimal"
IN_FLIGHT = 2


class MinimalBatcher:
    """Group commit reduced to its bones: queue, one script call per batch, two in flight."""

    def __init__(self, redis: Redis, sha: str, op: str) -> None:
        self.redis = redis
        self.sha = sha
        self.op = op
        self.queue: list[tuple[str, asyncio.Future[object]]] = []
        self.running = 0
        self.scheduled = False
        self.tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: str) -> object:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        self.kick()
        return await future

    def kick(self) -> None:
        if self.scheduled or not self.queue or self.running >= IN_FLIGHT:
            return
        self.scheduled = True
        self.running += 1
        task = asyncio.get_running_loop().create_task(self.commit())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def commit(self) -> None:
        self.scheduled = False
        batch, self.queue = self.queue, []
        try:
            reply = await self.redis.evalsha(self.sha, 1, MINIMAL_KEY, self.op,
                                             "\n".join(item for item, _ in batch), str(time.time()))
            results = reply if isinstance(reply, list) else [reply] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self.running -= 1
            self.kick()


BATCHERS = web.AppKey("batchers", dict[str, MinimalBatcher])


async def minimal_hit(request: web.Request) -> web.Response:
    body = await request.read()
    await request.app[BATCHERS]["hit"].submit(body.decode("utf-8", "replace").replace("\n", " "))
    return web.Response(status=204)


async def minimal_pixel(request: web.Request) -> web.Response:
    await request.app[BATCHERS]["hit"].submit(request.query_string)
    return web.Response(body=GIF, content_type="image/gif", headers={"Cache-Control": "no-store"})


async def minimal_status(request: web.Request) -> web.Response:
    last = await request.app[BATCHERS]["status"].submit(request.match_info["id"])
    return web.json_response({"id": request.match_info["id"], "last": str(last)})


async def minimal_activity(request: web.Request) -> web.Response:
    await request.read()
    await request.app[BATCHERS]["activity"].submit(request.match_info["id"])
    return web.json_response({"id": request.match_info["id"], "state": "active"})


def minimal_app(redis_url: str) -> web.Application:
    app = web.Application()

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        redis = Redis.from_url(redis_url, max_connections=64, decode_responses=True)
        sha = await redis.script_load(MINIMAL_SCRIPT)
        app[BATCHERS] = {op: MinimalBatcher(redis, sha, op) for op in ("hit", "status", "activity")}
        yield
        await redis.aclose()

    app.cleanup_ctx.append(redis_ctx)
    app.router.add_post("/v1/hit", minimal_hit)
    app.router.add_get("/v1/hit.gif", minimal_pixel)
    app.router.add_get("/v1/sessions/{id}", minimal_status)
    app.router.add_post("/v1/sessions/{id}/activity", minimal_activity)
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
    parser.add_argument("kind", choices=("ceiling", "naive", "minimal"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.kind == "ceiling":
        app = ceiling_app()
    else:
        app = naive_app(args.redis_url) if args.kind == "naive" else minimal_app(args.redis_url)
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt, web.GracefulExit):
        asyncio.run(serve(app, args.port))


if __name__ == "__main__":
    main()
