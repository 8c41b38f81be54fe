"""One Redis pub/sub connection per process, fanning transitions out to the local
server-sent event streams of the session they concern.

Events are published by the Lua scripts of any process, so a tab connected here hears
about a click handled by another process and about expiries announced by any scheduler.
When the subscription breaks, every local stream is told to re-read its snapshot
(``RESYNC``, retried until it succeeds: see ``sse``), since events may have been missed
meanwhile.

On a cluster, PUBLISH reaches every node, masters and replicas alike, so the bus may
listen on any of them: it starts on one and, each time its subscription breaks (the node
died, a failover), moves to the next node the client knows, instead of returning to a
node cached for the channel's slot that may be gone for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from portal_pulse.core.redis_conn import STORAGE_ERRORS

log = logging.getLogger(__name__)

Event = dict[str, Any]
#: Queue item telling a stream to send a fresh snapshot (the bus reconnected).
RESYNC: Final[Event] = {"type": "resync"}
#: Queue item telling a stream that the process is shutting down.
SHUTDOWN: Final[Event] = {"type": "shutdown"}

QUEUE_SIZE = 64


class EventBus:
    def __init__(self, client: Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._subscribers: defaultdict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self.subscribed = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        """Ask the listener to end (checked every turn; see ``Scheduler.stop``)."""
        self._stopping = True

    def subscribe(self, digest: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[digest].add(queue)
        return queue

    def unsubscribe(self, digest: str, queue: asyncio.Queue[Event]) -> None:
        queues = self._subscribers.get(digest)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[digest]

    def streams_of(self, digest: str) -> int:
        return len(self._subscribers.get(digest, ()))

    def _deliver(self, queue: asyncio.Queue[Event], event: Event) -> None:
        if queue.full():  # a stalled stream: drop its backlog, it re-reads the snapshot
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    queue.get_nowait()
            event = RESYNC
        queue.put_nowait(event)

    def dispatch(self, event: Event) -> None:
        digest = event.get("session")
        if not isinstance(digest, str):
            return
        for queue in list(self._subscribers.get(digest, ())):
            self._deliver(queue, event)

    def broadcast(self, event: Event) -> None:
        for queues in list(self._subscribers.values()):
            for queue in list(queues):
                self._deliver(queue, event)

    def _pubsub(self, failures: int) -> PubSub | ClusterPubSub:
        client = self._client
        if isinstance(client, RedisCluster):
            nodes = sorted(client.get_nodes(), key=lambda node: node.name)
            node = nodes[failures % len(nodes)] if nodes else None
            return client.pubsub(node=node, ignore_subscribe_messages=True)
        return client.pubsub(ignore_subscribe_messages=True)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with a bounded backoff."""
        delay = 0.1
        first = True
        failures = 0
        while not self._stopping:
            pubsub = self._pubsub(failures)
            try:
                await pubsub.subscribe(self._channel)
                self.subscribed.set()
                if not first:
                    self.broadcast(RESYNC)
                first, delay = False, 0.1
                while not self._stopping:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        event = json.loads(message["data"])
                    except (ValueError, TypeError):
                        log.warning("ignoring a malformed session event")
                        continue
                    if isinstance(event, dict):
                        self.dispatch(event)
            except STORAGE_ERRORS as exc:
                self.subscribed.clear()
                if self._stopping:
                    return
                first = False
                failures += 1
                log.warning("session event subscription lost (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(*STORAGE_ERRORS):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis-py 8.2
