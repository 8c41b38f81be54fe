"""Both services on a real 3-master + 3-replica Valkey cluster (conftest's
``valkey_cluster``, node timeout 1 s): sites on different masters under concurrent load
count exactly; a master SIGKILLed under load means 503 for its own sites only, and only
until its replica is promoted; with ``redis.replica_acks = 1`` no acknowledged hit is
lost; an open event stream keeps receiving. The services are never restarted.

Each test leaves the cluster whole again (the killed node restarts as a replica)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient
from redis.crc import key_slot

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.embedded_cluster import EmbeddedCluster, slot_ranges
from portal_pulse.core.keys import SESSION_EVENTS_CHANNEL
from portal_pulse.core.settings import Settings, SiteSettings
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.session.app import create_app as create_session
from portal_pulse.session.app_state import BUS
from tests.conftest import SERVICE_TOKEN, ClientFactory, cluster_settings
from tests.session.session_support import next_event

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"}
AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
#: Promotion takes the node timeout (1 s) plus an election; the issue's bound is
#: node timeout + 2 s, measured here from the moment the replica serves the slot.
AFTER_PROMOTION_SECONDS = 2.0

pytestmark = pytest.mark.slow


def slot_of_site(site: str) -> int:
    return key_slot(f"pulse:{{{site}}}:totals".encode())


def sites_per_master(per_master: int = 2) -> list[list[str]]:
    """Site names whose slots fall in each master's range (index = slot range)."""
    ranges = slot_ranges(3)
    found: list[list[str]] = [[] for _ in ranges]
    for i in range(10_000):
        name = f"site{i}"
        slot = slot_of_site(name)
        index = next(n for n, (first, last) in enumerate(ranges) if first <= slot <= last)
        if len(found[index]) < per_master:
            found[index].append(name)
        if all(len(names) == per_master for names in found):
            return found
    raise AssertionError("no sites found")


GROUPS = sites_per_master()
SITES = [site for group in GROUPS for site in group]


def settings_for(cluster: EmbeddedCluster, **redis: Any) -> Settings:
    sites = tuple(SiteSettings(name, "UTC", ("http://portal.test",)) for name in SITES)
    return cluster_settings(cluster, redis=redis, sites=sites, counter={"stats_cache_seconds": 0,
                                                                         "rate_limits_enabled": False})


@dataclass
class Sent:
    site: str
    key: str
    started: float
    status: int
    counted: str | None


@dataclass
class HitLoad:
    client: TestClient[Any, Any]
    sent: list[Sent] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    counter: int = 0

    def body(self, site: str) -> dict[str, str]:
        self.counter += 1
        key = f"{site}-{self.counter}"
        return {"site": site, "kind": "pageview", "path": "/", "visitor": key, "id": key}

    async def send(self, site: str, body: dict[str, str] | None = None) -> Sent:
        body = body or self.body(site)
        started = time.monotonic()
        response = await self.client.post("/v1/hit", json=body, headers=BROWSER)
        await response.read()
        sent = Sent(site, body["id"], started, response.status, response.headers.get("X-Pulse-Counted"))
        return sent

    async def worker(self, sites: list[str]) -> None:
        while not self.stop.is_set():
            for site in sites:
                self.sent.append(await self.send(site))
            await asyncio.sleep(0.005)

    def acked(self, site: str) -> list[Sent]:
        return [s for s in self.sent if s.site == site and s.status == 204]


async def stats(client: TestClient[Any, Any], site: str) -> dict[str, Any]:
    response = await client.get("/v1/stats", params={"site": site})
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


def bus_listeners(cluster: EmbeddedCluster) -> list[EmbeddedServer]:
    """The live nodes where the session event bus is subscribed, as the servers report it
    (``PUBSUB NUMSUB`` counts a node's own subscribers)."""
    found = []
    for node in cluster.nodes:
        if node.process is None or node.process.poll() is not None:
            continue
        with redis.Redis(host=node.host, port=node.port, socket_timeout=1.0) as client:
            try:
                [(_, subscribers)] = client.pubsub_numsub(SESSION_EVENTS_CHANNEL)
            except redis.ConnectionError:
                continue
        if subscribers:
            found.append(node)
    return found


async def until(condition: Callable[[], bool], within: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} not within {within}s")
        await asyncio.sleep(0.05)
    return time.monotonic()


def serving(cluster: EmbeddedCluster, slot: int) -> int:
    return cluster.master_of_slot(slot).port


async def restore(cluster: EmbeddedCluster, node: EmbeddedServer) -> None:
    """Start the killed node again (it rejoins as a replica) and wait for a whole cluster."""
    await asyncio.to_thread(node.start)
    await asyncio.to_thread(cluster.wait_ok)
    await asyncio.to_thread(cluster.wait_replicas_synced)


async def test_sites_on_every_master_count_exactly_under_load(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock
) -> None:
    valkey_cluster.flush()
    settings = settings_for(valkey_cluster)
    counter = await make_client(create_counter(settings, clock))
    load = HitLoad(counter)
    per_site = 120
    sent = await asyncio.gather(*(load.send(site) for site in SITES for _ in range(per_site)))
    assert {s.status for s in sent} == {204}, Counter(s.status for s in sent)
    assert {s.counted for s in sent} == {"1"}
    for site in SITES:
        figures = await stats(counter, site)
        assert (figures["total"], figures["pageviews"]["total"]) == (per_site, per_site), site

    session = await make_client(create_session(settings, clock))
    created = await asyncio.gather(*(session.post("/v1/sessions", json={}, headers=AUTH) for _ in range(300)))
    refused = [await r.text() for r in created if r.status != 201][:1]
    assert {r.status for r in created} == {201}, (Counter(r.status for r in created), refused)
    ids = [(await r.json())["id"] for r in created]
    answers = await asyncio.gather(*(session.get(f"/v1/sessions/{i}") for i in ids),
                                   *(session.post(f"/v1/sessions/{i}/activity") for i in ids))
    assert {r.status for r in answers} == {200}, Counter(r.status for r in answers)


@pytest.mark.parametrize("replica_acks", [0, 1])
async def test_a_master_killed_under_load(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock, replica_acks: int
) -> None:
    valkey_cluster.flush()
    counter = await make_client(create_counter(settings_for(valkey_cluster, replica_acks=replica_acks), clock))
    load = HitLoad(counter)
    victim_sites = GROUPS[0]
    slot = slot_of_site(victim_sites[0])
    master = valkey_cluster.master_of_slot(slot)
    workers = [asyncio.create_task(load.worker(SITES)) for _ in range(6)]
    try:
        await until(lambda: len(load.sent) > 300, 10, "load running")
        master.kill()
        killed = time.monotonic()
        promoted = await until(lambda: serving(valkey_cluster, slot) != master.port, 15, "the replica promoted")
        if replica_acks:
            # The promoted master has no replica to confirm WAIT until the old one rejoins.
            await restore(valkey_cluster, master)
            promoted = time.monotonic()
        await asyncio.sleep(AFTER_PROMOTION_SECONDS + 2.0)  # real time: the load runs on
    finally:
        load.stop.set()
        await asyncio.gather(*workers)
    if not replica_acks:
        await restore(valkey_cluster, master)

    statuses = {s.status for s in load.sent}
    assert statuses <= {204, 503}, statuses
    for site in SITES:
        refused = [s for s in load.sent if s.site == site and s.status == 503]
        if site not in victim_sites:
            assert not refused, f"{site} (another master) got {len(refused)} 503s"
            continue
        assert refused, "the outage was not seen"
        late_refusals = [round(s.started - promoted, 2) for s in refused][-5:]
        assert all(killed - 0.2 <= s.started < promoted + AFTER_PROMOTION_SECONDS for s in refused), \
            f"503 after promotion + {AFTER_PROMOTION_SECONDS}s: {late_refusals}"
        late = [s for s in load.sent if s.site == site and s.started > promoted + AFTER_PROMOTION_SECONDS]
        assert len(late) > 20 and all(s.status == 204 for s in late)
    for site in SITES:
        figures = await stats(counter, site)
        acked = len(load.acked(site))
        if site not in victim_sites:
            assert figures["total"] == acked == figures["pageviews"]["total"], site
        elif replica_acks:
            assert figures["total"] >= acked, f"{site}: {acked - figures['total']} acknowledged hits lost"
            replay = await asyncio.gather(*(load.send(site, {"site": site, "kind": "pageview", "path": "/",
                                                             "visitor": s.key, "id": s.key})
                                            for s in load.acked(site)))
            assert {r.counted for r in replay} == {"0; reason=duplicate"}, "an acknowledged hit was lost"


async def test_an_open_event_stream_keeps_receiving_across_a_failover(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock
) -> None:
    valkey_cluster.flush()
    session = await make_client(create_session(settings_for(valkey_cluster), clock))
    session_id = (await (await session.post("/v1/sessions", json={}, headers=AUTH)).json())["id"]
    events = await session.get(f"/v1/sessions/{session_id}/events")
    assert (await next_event(events))[0] == "state"
    # Kill the node the bus listens on (a master or a replica; when it is the master of
    # the sessions' slot, the writes fail over too). One node only: two masters of three
    # would leave no majority to promote a replica.
    victims = bus_listeners(valkey_cluster)
    assert len(victims) == 1
    for node in victims:
        node.kill()
    bus = session.app[BUS]
    try:
        # The bus moves to another node (events published meanwhile are covered by the
        # resync snapshot each stream re-reads), then hears what comes next.
        await until(lambda: bus.subscribed.is_set() and len(bus_listeners(valkey_cluster)) == 1, 10,
                    "the bus resubscribed")
        assert bus_listeners(valkey_cluster)[0] is not victims[0]
        deadline = time.monotonic() + 20
        while (kept := await session.post(f"/v1/sessions/{session_id}/keepalive")).status != 200:
            assert time.monotonic() < deadline, "keepalive never answered 200 again"
            await asyncio.sleep(0.1)
        version = (await kept.json())["version"]
        # The tab catches up: by its resync snapshot when that was read after the click
        # (the click's event, no newer, is then skipped), else by the "extended" event.
        seen: list[tuple[str, int]] = []
        while not seen or seen[-1][1] < version:
            name, data = await next_event(events, seconds=15)
            seen.append((name, data["version"]))
        assert {name for name, _ in seen} <= {"state", "extended"}, seen
        # The resync is behind it: what the bus hears now reaches the tab as an event.
        again = await session.post(f"/v1/sessions/{session_id}/keepalive")
        assert again.status == 200
        name, data = await next_event(events, seconds=15)
        assert (name, data["version"]) == ("extended", (await again.json())["version"])
        events.close()
    finally:
        for node in victims:
            await restore(valkey_cluster, node)
