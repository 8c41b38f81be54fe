"""A slot moved from one master to another while the services use it (issue 10), both
ways ``EmbeddedCluster.move_slot`` knows: Valkey 9's atomic ``CLUSTER MIGRATESLOTS``
and the classic ``SETSLOT IMPORTING/MIGRATING`` + ``MIGRATE`` + ``SETSLOT NODE``.

Each test moves the slot back, so the session's cluster keeps its slot ranges (other
tests place sites on masters by range)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import Counter
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.embedded import poll_until
from portal_pulse.core.embedded_cluster import EmbeddedCluster, MoveWay
from portal_pulse.core.keys import digest
from portal_pulse.core.redis_conn import build_client
from portal_pulse.core.scripts import Script, ScriptRunner, not_run
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.counter.hit import CommitResult, Hit, Kind, Outcome
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.store import HitStore, batch_keys
from tests.conftest import T0, ClientFactory, cluster_settings
from tests.reliability.test_cluster_failover import GROUPS, SITES, HitLoad, settings_for, slot_of_site, stats, until

pytestmark = pytest.mark.slow

WAYS: list[MoveWay] = ["atomic", "classic"]
#: The manual clock's day and month in UTC (the sites of ``settings_for`` are in UTC).
DAY, MONTH = "2026-11-26", "2026-11"


@pytest.mark.parametrize("way", WAYS)
def test_move_slot_moves_every_key_and_the_routing(valkey_cluster: EmbeddedCluster, way: MoveWay) -> None:
    valkey_cluster.flush()
    first = valkey_cluster.nodes[0]
    client = redis.RedisCluster(host=first.host, port=first.port)
    try:
        for i in range(120):
            client.set(f"{{moving}}:{i}", i)
        client.set("{elsewhere}", "x")
        slot = key_slot(b"{moving}")
        source = valkey_cluster.master_of_slot(slot)
        batches: list[int] = []
        target = valkey_cluster.move_slot(slot, way=way, batch=50, between_batches=lambda: batches.append(1))
        assert target.port != source.port
        assert valkey_cluster.master_of_slot(slot).port == target.port
        with redis.Redis(host=target.host, port=target.port) as node:
            assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 120
        with redis.Redis(host=source.host, port=source.port) as node:
            assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert len(batches) == (3 if way == "classic" else 0)
        assert [client.get(f"{{moving}}:{i}") for i in (0, 119)] == [b"0", b"119"]
        assert valkey_cluster.move_slot(slot, source, way=way).port == source.port
        assert client.get("{moving}:7") == b"7"
        assert client.get("{elsewhere}") == b"x"
    finally:
        client.close()


#: The command timeout of the load tests: how long a refused call is resent.
RESEND_BUDGET = 2.0


def figures(cluster: EmbeddedCluster, site: str) -> dict[str, dict[str, int]]:
    """The site's totals, month and day hashes (the manual clock stays on one day)."""
    keys = SiteKeys(site)
    first = cluster.nodes[0]
    with redis.RedisCluster(host=first.host, port=first.port, decode_responses=True) as client:
        return {name: {field: int(value) for field, value in client.hgetall(key).items()}
                for name, key in (("totals", keys.totals), ("month", keys.month(MONTH)), ("day", keys.day(DAY)))}


@pytest.mark.parametrize("replica_acks", [0, 1])
@pytest.mark.parametrize("way", WAYS)
async def test_hits_of_every_site_count_exactly_while_a_slot_moves(
    valkey_cluster: EmbeddedCluster, make_client: ClientFactory, clock: ManualClock, way: MoveWay, replica_acks: int
) -> None:
    valkey_cluster.flush()
    # Calls refused while the slot is half moved are resent for up to the command timeout:
    # 2 s here (1 s by default), so a move slowed by a loaded machine stays within it
    settings = settings_for(valkey_cluster, replica_acks=replica_acks, command_timeout_seconds=RESEND_BUDGET)
    counter = await make_client(create_counter(settings, clock))
    load = HitLoad(counter)
    moving = GROUPS[0][0]
    slot = slot_of_site(moving)
    source = valkey_cluster.master_of_slot(slot)
    workers = [asyncio.create_task(load.worker([site])) for site in SITES for _ in range(3)]
    try:
        await until(lambda: len(load.sent) > 600, 10, "load running")
        started = time.monotonic()
        # the classic way: 10 keys per MIGRATE and a pause after each, so the move lasts
        # about half a second under load (the site's calls meanwhile get TRYAGAIN and wait;
        # a call is resent for up to the command timeout)
        target = await asyncio.to_thread(valkey_cluster.move_slot, slot, way=way, batch=10,
                                         between_batches=lambda: time.sleep(0.015))
        moved = time.monotonic()
        await until(lambda: len([s for s in load.sent if s.site == moving and s.started > moved]) > 50, 10,
                    "load on the moved slot")
    finally:
        load.stop.set()
        await asyncio.gather(*workers)
    try:
        assert valkey_cluster.master_of_slot(slot).port == target.port != source.port
        statuses = Counter(s.status for s in load.sent)
        refused = [(s.site, round(s.started - started, 3)) for s in load.sent if s.status != 204][:5]
        assert set(statuses) == {204}, (statuses, f"first refusals (site, s into the move): {refused}")
        for site in SITES:
            during = [s for s in load.sent if s.site == site and started <= s.started <= moved]
            assert during, f"no hit of {site} was sent while the slot moved"
            acked = len(load.acked(site))
            found = figures(valkey_cluster, site)
            for name in ("totals", "month", "day"):
                assert (found[name]["visits"], found[name]["pageviews"]) == (acked, acked), (site, name, found)
            assert (await stats(counter, site))["total"] == acked, site
            # the statistics log, folded on its master (the read folds first): every hit once
            top = await (await counter.get("/v1/stats/top", params={"site": site, "dimension": "pages"})).json()
            assert top["rows"] == [{"key": "/", "visits": acked, "pageviews": acked}], (site, top)
        assert moved - started < RESEND_BUDGET, "the move took longer than the calls may wait for it"
    finally:
        await asyncio.to_thread(valkey_cluster.move_slot, slot, source, way="atomic")


def tryagain_answers(cluster: EmbeddedCluster) -> int:
    """TRYAGAIN errors the nodes answered since ``reset_stats`` (the servers' own
    ``INFO errorstats``: the test observes the refusals from outside the runner)."""
    found = 0
    for node in cluster.nodes:
        if node.process is None:
            continue
        with redis.Redis(host=node.host, port=node.port) as client:
            stats = client.info("errorstats")
        entry = stats.get("errorstat_TRYAGAIN")
        found += int(entry["count"]) if isinstance(entry, dict) else 0
    return found


def reset_stats(cluster: EmbeddedCluster) -> None:
    for node in cluster.nodes:
        if node.process is not None:
            with redis.Redis(host=node.host, port=node.port) as client:
                client.config_resetstat()


COUNT_BOTH = Script("count_both", "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])")


@pytest.mark.parametrize("replica_acks", [0, 1])
async def test_a_call_the_cluster_did_not_run_is_sent_again_until_the_slot_is_handed_over(
    valkey_cluster: EmbeddedCluster, replica_acks: int
) -> None:
    """While the slot is half moved the two keys are on different nodes (TRYAGAIN, or ASK
    then TRYAGAIN): the ScriptRunner sends the call again until the handover, and it
    runs once. Past ``resend_seconds`` the call fails without having run."""
    valkey_cluster.flush()
    reset_stats(valkey_cluster)
    settings = cluster_settings(valkey_cluster, redis={"replica_acks": replica_acks}).redis
    client = build_client(settings)
    keys = ("pulse:{moving}:a", "pulse:{moving}:b")
    slot = key_slot(keys[0].encode())
    source = valkey_cluster.master_of_slot(slot)
    try:
        runner = ScriptRunner(client, replica_acks, 500, resend_seconds=5.0)
        await runner.load(COUNT_BOTH)
        await client.set(keys[0], 1)  # only the first key exists: the call must see both
        loop = asyncio.get_running_loop()
        calls: list[concurrent.futures.Future[Any]] = []

        def after_first_batch() -> None:  # in the mover's thread: the keys are split now
            calls.append(asyncio.run_coroutine_threadsafe(runner.run(COUNT_BOTH, keys, []), loop))
            poll_until(lambda: tryagain_answers(valkey_cluster) > 0, time.monotonic() + 10, "a call answered TRYAGAIN")

        await asyncio.to_thread(valkey_cluster.move_slot, slot, way="classic", batch=1,
                                between_batches=after_first_batch)
        assert len(calls) == 1 and await asyncio.wrap_future(calls[0]) == 1  # it ran once, after the handover
        assert tryagain_answers(valkey_cluster) > 0  # it was refused at least once, then ran
        assert [int(await client.get(key) or 0) for key in keys] == [2, 1]

        impatient = ScriptRunner(client, replica_acks, 500, resend_seconds=0.3)
        failed: list[BaseException] = []

        def give_up_first() -> None:  # (after the second batch both keys are on the target: it runs)
            if not failed:
                reply = asyncio.run_coroutine_threadsafe(impatient.run_many(COUNT_BOTH, [(keys, [])]), loop).result()
                failed.extend(reply)

        await asyncio.to_thread(valkey_cluster.move_slot, slot, source, way="classic", batch=1,
                                between_batches=give_up_first)
        assert len(failed) == 1 and not_run(failed[0]), failed
        assert [int(await client.get(key) or 0) for key in keys] == [2, 1]  # it did not run
    finally:
        await client.aclose()
        if valkey_cluster.master_of_slot(slot).port != source.port:
            await asyncio.to_thread(valkey_cluster.move_slot, slot, source, way="atomic")



def a_hit(visitor: str, now: float, *, member: bool = False, bot: bool = False) -> Hit:
    return Hit(site=ABSENT_SITE, kind=Kind.PAGEVIEW, path_digest=digest("/"), visitor_digest=digest(visitor),
               member=member, bot=bot, now=now, day=DAY, month=MONTH, hour=f"{DAY}T10+0000", event_digest="",
               ip_digest="")


ABSENT_SITE = "quiet"


async def test_a_half_moved_slot_never_runs_the_script_even_when_every_other_key_exists(
    valkey_cluster: EmbeddedCluster,
) -> None:
    """Once a guest, a member and a bot were seen, every key a returning guest's hit
    declares exists but ``absent``: without it the source would run the script while the
    slot is MIGRATING, and its new visit (the visitor hash deleted, then written again)
    would fail half run ("non local key"), the visitor's state lost. With it the call is
    refused whole (TRYAGAIN) and nothing changes."""
    valkey_cluster.flush()
    settings = cluster_settings(valkey_cluster, counter={"rate_limits_enabled": False})
    client = build_client(settings.redis)
    store = HitStore(ScriptRunner(client, resend_seconds=0.2), settings.counter)
    keys = SiteKeys(ABSENT_SITE)
    slot = key_slot(keys.totals.encode())
    source = valkey_cluster.master_of_slot(slot)
    target = next(node for node in valkey_cluster.live_masters() if node.port != source.port)
    try:
        seen = await store.commit([a_hit("guest", T0), a_hit("member", T0, member=True), a_hit("bot", T0, bot=True)])
        assert not any(isinstance(result, BaseException) for result in seen), seen
        later = T0 + settings.counter.visit_window_seconds + 60
        declared = batch_keys(keys, [a_hit("guest", later)], [0], limits=False)
        assert [key for key in declared if not await client.exists(key)] == [keys.absent]
        before = await client.hgetall(keys.visitor(digest("guest")))
        with redis.Redis(host=source.host, port=source.port) as from_, \
                redis.Redis(host=target.host, port=target.port) as to:
            to.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", valkey_cluster.node_id(source))
            from_.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", valkey_cluster.node_id(target))
            try:
                [refused] = await store.commit([a_hit("guest", later)])
            finally:
                for node in (from_, to):
                    node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        assert not_run(refused), refused
        assert await client.hgetall(keys.visitor(digest("guest"))) == before  # untouched
        assert int(await client.hget(keys.totals, "visits") or 0) == 2
        [counted] = await store.commit([a_hit("guest", later)])  # the slot is stable again
        assert counted == CommitResult(Outcome.COUNTED, new_visit=True)
    finally:
        await client.aclose()
