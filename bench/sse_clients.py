"""Hold many server-sent event streams open, from its own process:
``python -m bench.sse_clients --port P --ids FILE --streams N``.

Opens N raw-socket ``GET /v1/sessions/<id>/events`` streams (ids round-robin), waits for
each stream's first event, prints ``READY <open> <failed>`` and keeps them open (reading
and discarding) until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import typing
from pathlib import Path

from portal_pulse.core.runner import install_uvloop


class Stream(asyncio.Protocol):
    def __init__(self, ready: asyncio.Future[bool]) -> None:
        self.ready = ready
        self.seen = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.ready.done():
            return
        self.seen += data
        if b" 200 " not in self.seen[:16] and len(self.seen) >= 16:
            self.ready.set_result(False)
        elif b"event:" in self.seen or b"data:" in self.seen:
            self.ready.set_result(True)
            self.seen.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_result(False)


async def hold(port: int, ids: list[str], streams: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    opened: list[Stream] = []
    failed = 0
    gate = asyncio.Semaphore(concurrency)

    async def open_one(i: int) -> None:
        nonlocal failed
        async with gate:
            ready: asyncio.Future[bool] = loop.create_future()
            try:
                _, stream = await loop.create_connection(lambda: Stream(ready), "127.0.0.1", port)
                request = (f"GET /v1/sessions/{ids[i % len(ids)]}/events HTTP/1.1\r\nHost: bench\r\n"
                           "Accept: text/event-stream\r\n\r\n").encode()
                stream.transport.write(request)
                ok = await asyncio.wait_for(ready, 30)
            except (OSError, TimeoutError):
                ok = False
            if ok:
                opened.append(stream)
            else:
                failed += 1

    await asyncio.gather(*(open_one(i) for i in range(streams)))
    print(f"READY {len(opened)} {failed}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for stream in opened:
        stream.transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_clients")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ids", type=Path, required=True)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    ids = [line for line in args.ids.read_text().splitlines() if line]
    install_uvloop()
    asyncio.run(hold(args.port, ids, args.streams, args.concurrency))


if __name__ == "__main__":
    main()
