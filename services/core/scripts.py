"""Lua scripts run on Redis, standalone or cluster, in one place: loaded once,
``NOSCRIPT`` (the server lost its scripts: a restart, a failover to a replica that never
saw ``SCRIPT LOAD``) answered here by loading the script and sending the call again (it
did not run), and the optional replica acknowledgement (``WAIT``) sent after the calls
on the same connection, in the same round trip.

``run_many`` sends independent calls of one script. On a standalone server they travel
in one pipeline. On a cluster every call (its keys share one slot) is sent on its own,
concurrently: redis-py's cluster client refuses ``EVALSHA`` in a pipeline, and a slow
or dead shard must delay and fail only its own calls. A call's failure is its reply
(an exception), never the others'.

While a slot moves (Valkey's atomic ``CLUSTER MIGRATESLOTS``, or the classic
``MIGRATING``/``IMPORTING`` + ``MIGRATE``) a call may be answered ``MOVED``, ``ASK`` or
``TRYAGAIN``: none of them ran the script, so following them breaks no "never resend"
rule. redis-py's cluster client follows them itself (its redirection loop is not the
retry that ``redis_conn`` turns off) and gives up after 16 tries with ``ClusterError("TTL
exhausted.")``; a call whose keys are split between the two nodes gets ``TRYAGAIN`` until
the slot is handed over, so such a call is sent again here after a short backoff, for up
to ``resend_seconds`` (the command timeout), inside the caller's own timeout. (redis-py's
async cluster client sends the ``ASKING`` of an ``ASK`` on a pooled connection that need
not be the one the command then uses; the target then answers ``MOVED`` back to the
source, which is harmless: nothing ran, and hit.lua's declared ``absent`` key makes a
half-moved slot answer ``TRYAGAIN`` anyway. The acknowledged path below sends ``ASKING``
in the same pipeline as the script.)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.exceptions import AskError, ClusterError, MovedError, NoScriptError, ResponseError, TryAgainError

from portal_pulse.core.errors import StorageUnavailable
from portal_pulse.core.redis_conn import BoundedRedisCluster
from portal_pulse.core.settings import RedisSettings


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


#: Redirections (MOVED, ASK) one acknowledged call follows, as redis-py's own loop does.
REDIRECTIONS = 16

#: One call of a script: its keys (one slot on a cluster) and its arguments.
Call = tuple[Sequence[str], Sequence[Any]]

K = TypeVar("K", bound=Hashable)


def indexes_by(groups: Iterable[K]) -> dict[K, list[int]]:
    """The positions of a batch's items grouped by what they share one call for (a
    site, a session bucket: one slot), in first-seen order: a batch of items becomes one
    call per group (``run_many``), and each group's reply goes back to its items."""
    found: dict[K, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        found[group].append(index)
    return found


class ReplicasBehind(StorageUnavailable):
    """The writes ran on the master but fewer replicas than ``replica_acks`` confirmed
    them in time: not acknowledged (the caller answers 503 and the client retries)."""

    def __init__(self, confirmed: int, wanted: int) -> None:
        super().__init__(f"{confirmed} of {wanted} replicas confirmed the write; retry shortly")


#: First pause before a call that was not run (TRYAGAIN) is sent again; it doubles up to
#: ``RESEND_MAX_PAUSE_SECONDS``.
RESEND_PAUSE_SECONDS = 0.01
RESEND_MAX_PAUSE_SECONDS = 0.1


def not_run(reply: object) -> bool:
    """True for a cluster's answer that says the command did not run and may be sent
    again: TRYAGAIN (the slot is moving and the keys are not all on one node), or
    redis-py's redirection loop giving up (every try was MOVED, ASK or TRYAGAIN)."""
    return isinstance(reply, TryAgainError) or (isinstance(reply, ClusterError) and "TTL exhausted" in str(reply))


class ScriptRunner:
    def __init__(self, client: Redis, replica_acks: int = 0, replica_timeout_ms: int = 500,
                 resend_seconds: float = 1.0) -> None:
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._acks = replica_acks
        self._acks_timeout_ms = replica_timeout_ms
        self._resend_seconds = resend_seconds

    @classmethod
    def for_settings(cls, client: Redis, settings: RedisSettings) -> ScriptRunner:
        """A runner with the deployment's ``replica_acks``; WAIT gives up after half
        the command timeout, so its answer arrives before the socket timeout. A call
        the cluster did not run (a slot moving) is resent for up to the command timeout."""
        return cls(client, settings.replica_acks, max(1, int(settings.command_timeout_seconds * 500)),
                   settings.command_timeout_seconds)

    async def load(self, *scripts: Script) -> None:
        """Load scripts ahead of their first call (on every master of a cluster)."""
        for script in scripts:
            await self._client.script_load(script.source)

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any], *, write: bool = True) -> Any:
        """One call; its reply, or its error raised."""
        reply = (await self.run_many(script, [(keys, args)], write=write))[0]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def run_many(self, script: Script, calls: Sequence[Call], *, write: bool = True) -> list[Any]:
        """Every call's reply (or exception), in order. ``write``: wait for the replica
        acknowledgements when ``replica_acks`` asks for them."""
        acks = self._acks if write else 0
        if self._cluster:
            if len(calls) == 1:
                return [await self._cluster_call(script, calls[0], acks)]
            return list(await asyncio.gather(*(self._cluster_call(script, call, acks) for call in calls)))
        replies = await self._pipeline(script, calls, acks)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self._client.script_load(script.source)
            again = await self._pipeline(script, [calls[i] for i in missing], acks)
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(self, script: Script, calls: Sequence[Call], acks: int) -> list[Any]:
        if len(calls) == 1 and not acks:  # the common case: one command, no pipeline object
            keys, args = calls[0]
            try:
                return [await self._client.evalsha(script.sha, len(keys), *keys, *args)]
            except ResponseError as exc:  # as a pipeline reports it: this call's reply
                return [exc]
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            if acks:
                pipe.execute_command("WAIT", acks, self._acks_timeout_ms)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if acks:
            confirmed = replies.pop()
            if isinstance(confirmed, BaseException):
                raise confirmed
            if int(confirmed) < acks:
                behind = ReplicasBehind(int(confirmed), acks)
                return [behind if not isinstance(reply, BaseException) else reply for reply in replies]
        return replies

    async def _cluster_call(self, script: Script, call: Call, acks: int) -> Any:
        """One call on a cluster, sent again (after a growing pause) while the cluster
        answers that it did not run it, for up to ``resend_seconds``."""
        keys, args = call
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._resend_seconds
        pause = RESEND_PAUSE_SECONDS
        while True:
            reply = await self._cluster_call_once(script, keys, args, acks)
            if not not_run(reply) or loop.time() + pause > deadline:
                return reply
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESEND_MAX_PAUSE_SECONDS)

    async def _cluster_call_once(self, script: Script, keys: Sequence[str], args: Sequence[Any], acks: int) -> Any:
        try:
            if acks:
                return await self._cluster_call_acked(script, keys, args, acks)
            try:
                return await self._client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await self._script_load_for(script, keys[0])
                return await self._client.evalsha(script.sha, len(keys), *keys, *args)
        except Exception as exc:  # this call's reply; the caller's other calls go on
            return exc

    async def _script_load_for(self, script: Script, key: str) -> None:
        client = self._client
        assert isinstance(client, RedisCluster)
        node = client.get_node_from_key(key)
        await client.execute_command("SCRIPT LOAD", script.source, target_nodes=node)

    async def _cluster_call_acked(self, script: Script, keys: Sequence[str], args: Sequence[Any], acks: int) -> Any:
        """EVALSHA then WAIT on one connection of the key's master: WAIT counts the
        replicas that have this connection's writes. Redirections are followed here as
        redis-py follows them (MOVED: update the slot map and send to the new master;
        ASK: send ``ASKING`` first, on the same connection), a bounded number of times."""
        client = self._client
        assert isinstance(client, BoundedRedisCluster)
        loaded = False
        asked: AskError | None = None
        reply: Any = None
        for _ in range(REDIRECTIONS):
            if asked is not None:
                node = client.get_node(host=asked.host, port=asked.port) or client.get_node_from_key(keys[0])
                commands = [PipelineCommand(0, "ASKING")]
            else:
                node = client.get_node_from_key(keys[0])
                commands = []
            evalsha = PipelineCommand(len(commands), "EVALSHA", script.sha, len(keys), *keys, *args)
            wait = PipelineCommand(len(commands) + 1, "WAIT", acks, self._acks_timeout_ms)
            commands += [evalsha, wait]
            async with client.connection_permit():
                await node.execute_pipeline(commands)
            reply, confirmed = evalsha.result, wait.result
            asked = None
            if isinstance(reply, NoScriptError) and not loaded:
                loaded = True
                await self._script_load_for(script, keys[0])
                continue
            if isinstance(reply, MovedError):
                await client.nodes_manager.move_slot(reply)  # a failover or a moved slot
                continue
            if isinstance(reply, AskError):
                asked = reply
                continue
            if isinstance(reply, BaseException):
                return reply
            if isinstance(confirmed, BaseException):
                return confirmed
            if int(confirmed) < acks:
                return ReplicasBehind(int(confirmed), acks)
            return reply
        return reply if not isinstance(reply, (MovedError, AskError)) else ClusterError("TTL exhausted.")
