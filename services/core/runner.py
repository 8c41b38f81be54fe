"""Running apps: uvloop when available, graceful shutdown on SIGTERM/SIGINT.

On a stop signal each site stops accepting, in-flight requests finish (bounded by
``shutdown_timeout``), then every app's cleanup contexts run, so acknowledged work is
committed before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from portal_pulse.core.app_keys import SERVICE_METRICS, SETTINGS
from portal_pulse.core.connection_limits import LimitedAppRunner
from portal_pulse.core.settings import HttpSettings
from portal_pulse.core.web import RouteAccessLogger, install_log_redaction

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 10.0
#: Allocations (minus frees) between two collections of the youngest generation.
GC_THRESHOLD = 20_000


@dataclass(frozen=True)
class Served:
    app: web.Application
    host: str
    port: int
    name: str
    #: Share the port with the other workers of ``--workers N`` (SO_REUSEPORT).
    reuse_port: bool = False
    #: More ports the same app answers on: a worker's own metrics port.
    extra_ports: tuple[int, ...] = ()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def tune_gc() -> None:
    """Once started: move everything built so far (modules, apps, the crawler list) out
    of the collector's sight, and collect the youngest generation less often. A request
    allocates hundreds of short-lived objects, almost all freed by reference counting;
    with the default threshold (700) the collector ran every few requests and walked
    the long-lived heap at every older-generation pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(
    served: Sequence[Served],
    on_started: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Serve the apps until SIGTERM or SIGINT, then shut them down in reverse order."""
    install_log_redaction()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for item in served:
            settings = item.app.get(SETTINGS)
            per_request = settings is None or settings.access_log == "requests"
            runner = LimitedAppRunner(
                item.app,
                settings.http if settings is not None else HttpSettings(),
                item.app.get(SERVICE_METRICS),
                access_log_class=RouteAccessLogger,
                access_log=logging.getLogger("aiohttp.access") if per_request else None,
                shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
                handle_signals=False,
            )
            await runner.setup()
            runners.append(runner)
            for port in (item.port, *item.extra_ports):
                site = web.TCPSite(
                    runner, item.host, port, backlog=1024, reuse_address=True,
                    reuse_port=item.reuse_port if port == item.port else None,
                )
                await site.start()
                log.info("%s listening on http://%s:%d", item.name, item.host, port)
        if on_started is not None:
            await on_started()
        tune_gc()
        await stop.wait()
        log.info("stop signal received; finishing in-flight requests")
    finally:
        for started in reversed(runners):
            await started.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(served: Sequence[Served], on_started: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
    install_uvloop()
    asyncio.run(serve(served, on_started))
