"""The thin storage layer: one Lua script per operation, so every state change, its
due-time update and its event (stream + pub/sub) happen atomically and exactly once.

Sessions are spread over buckets (``core.keys.SESSION_BUCKETS``), each its own hash
slot with its own due-time index and event stream; every script call concerns one
bucket and declares every key it touches (``declared_keys.lua`` refuses any other).

Scripts run through the core ``ScriptRunner`` (NOSCRIPT and replica acknowledgements
handled there). Every call is bounded in time: a Redis that does not answer raises
``TimeoutError`` (one of ``STORAGE_ERRORS``), which the web layer turns into 503 +
Retry-After. Status reads and touches, the hot calls, go through the core ``Batcher``:
one round trip per event-loop turn for all concurrent requests, one script call for the
batch on one server, one per bucket on a cluster (``read_many.lua``, ``touch.lua``;
``ScriptRunner.run_many`` sends them concurrently there), with its bounded queue, timeout
and circuit breaker; on a cluster each node is a lane of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from portal_pulse.core.batch_metrics import BatchMetrics
from portal_pulse.core.batcher import Batcher
from portal_pulse.core.redis_conn import key_router
from portal_pulse.core.scripts import Call, Script, ScriptRunner, indexes_by
from portal_pulse.core.settings import SessionSettings
from portal_pulse.session.keys import (
    DUE_INDEXES,
    SESSION_EVENTS_CHANNEL,
    bucket_of,
    due_index,
    session_events_stream,
    session_key,
)
from portal_pulse.session.state_machine import Evaluation, State, Timing, evaluate

T = TypeVar("T")

#: How long an expired or ended session is remembered, so late calls get 410, not 404.
TOMBSTONE_MS = 24 * 3600 * 1000


class Outcome(StrEnum):
    OK = "ok"
    MISSING = "missing"
    GONE = "gone"
    PROMPT_OPEN = "prompt_open"


@dataclass(frozen=True, slots=True)
class Result:
    """What a write did: its outcome, the session's state afterwards, and the events
    this call announced (for the transition counter)."""

    outcome: Outcome
    state: State | None = None
    remaining_ms: int = 0
    prompt_in_ms: int = 0
    idle_ms: int = 0
    prompt_ms: int = 0
    emitted: tuple[str, ...] = ()
    #: The session's version after the write (see ``StoredSession.version``).
    version: int = 0


@dataclass(frozen=True, slots=True)
class StoredSession:
    created_ms: int
    last_activity_ms: int
    timing: Timing
    announced: str
    #: The session's version: it goes up with every change (create, touch, transition),
    #: and every view of the session carries it, so views are ordered by it, not by the
    #: clocks of the processes that produced them. 0: stored before versions existed.
    version: int = 0

    def at(self, now_ms: int) -> Evaluation:
        return evaluate(self.last_activity_ms, self.created_ms, self.timing, self.announced == State.ENDED, now_ms)


def _source(name: str) -> str:
    return (files("portal_pulse.session") / name).read_text(encoding="utf-8")


def script_source(name: str) -> str:
    """A script with the key guard and the shared prelude in front of it."""
    return "\n".join((_source("declared_keys.lua"), _source("session_prelude.lua"), _source(name)))


CREATE = Script("create", script_source("create.lua"))
TOUCH = Script("touch", script_source("touch.lua"))
END = Script("end", script_source("end_session.lua"))
ANNOUNCE = Script("announce_due", script_source("announce_due.lua"))
READ_MANY = Script("read_many", _source("declared_keys.lua") + "\n" + _source("read_many.lua"))
SCRIPTS = (CREATE, TOUCH, END, ANNOUNCE, READ_MANY)
#: The batchers' bounds: items per script call, calls waiting, script calls at once.
MAX_BATCH, MAX_PENDING, IN_FLIGHT = 512, 8192, 2


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_OUTCOMES = {outcome.value.encode(): outcome for outcome in Outcome}
_STATES = {state.value.encode(): state for state in State}


def _state(value: Any) -> State:
    return _STATES.get(value) or State(_text(value))


@dataclass(frozen=True, slots=True)
class DueStep:
    """One scheduler step over every bucket: the transitions announced ``[(type, due
    ms)]``, whether some bucket may hold more due sessions than one batch, and the
    errors of the buckets that failed (the others were stepped)."""

    events: list[tuple[str, int]]
    more: bool
    failures: list[BaseException]


def _by_bucket(digests: Sequence[str]) -> dict[int, list[int]]:
    """Item indexes grouped by their session's bucket."""
    return indexes_by(bucket_of(digest) for digest in digests)


def _spread(groups: dict[int, list[int]], replies: Sequence[Any], size: int) -> list[Any]:
    """Per item, its reply from its bucket's call (or that call's exception)."""
    results: list[Any] = [None] * size
    for indexes, reply in zip(groups.values(), replies, strict=True):
        if isinstance(reply, BaseException):
            for index in indexes:
                results[index] = reply
            continue
        for index, item in zip(indexes, reply, strict=True):
            results[index] = list(item)
    return results


class SessionStore:
    def __init__(
        self, client: Redis, runner: ScriptRunner, settings: SessionSettings, timeout_seconds: float,
        batches: BatchMetrics,
    ) -> None:
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._runner = runner
        self._settings = settings
        self._timeout = timeout_seconds
        node_of = key_router(client)
        bucket_node: Callable[[str], str] | None = (
            None if node_of is None else (lambda digest: node_of(due_index(bucket_of(digest))))
        )
        #: Status reads and touches of concurrent requests: one round trip per batch,
        #: one script call (``_calls_of``); on a cluster, a lane per node.
        self._reads: Batcher[str, list[Any]] = Batcher(
            self._flush_reads, batches.operation("read"), max_batch=MAX_BATCH, max_pending=MAX_PENDING,
            in_flight=IN_FLIGHT, timeout_seconds=timeout_seconds, lane_of=bucket_node,
        )
        self._touches: Batcher[tuple[str, str, int], list[Any]] = Batcher(
            self._flush_touches, batches.operation("touch"), max_batch=MAX_BATCH, max_pending=MAX_PENDING,
            in_flight=IN_FLIGHT, timeout_seconds=timeout_seconds,
            lane_of=None if bucket_node is None else (lambda touch: bucket_node(touch[0])),
        )

    async def load_scripts(self) -> None:
        await self._runner.load(*SCRIPTS)

    async def _bounded(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout):
            return await call

    def _head(self, bucket: int, now_ms: int) -> tuple[list[str], list[Any]]:
        """The first keys and arguments of every session script (see session_prelude.lua)."""
        return [due_index(bucket), session_events_stream(bucket)], [
            now_ms, self._settings.stream_maxlen, SESSION_EVENTS_CHANNEL, TOMBSTONE_MS,
        ]

    def _call(self, digest: str, now_ms: int, extra_args: list[Any]) -> Call:
        """A one-session call: its bucket's keys, the session hash, the arguments."""
        keys, args = self._head(bucket_of(digest), now_ms)
        return [*keys, session_key(digest)], [*args, digest, *extra_args]

    async def _run(self, script: Script, call: Call) -> list[Any]:
        reply = await self._bounded(self._runner.run(script, *call))
        return list(reply)

    async def _per_bucket(self, read: Callable[[Any, str], Any]) -> list[Any]:
        """One plain read (no script) of every bucket's due index, in bucket order; a
        failed bucket's entry is its exception. On a cluster the reads go concurrently,
        so a dead master fails only its own buckets."""
        if self._cluster:
            return list(await asyncio.gather(
                *(self._bounded(read(self._client, due)) for due in DUE_INDEXES), return_exceptions=True,
            ))
        async with self._client.pipeline(transaction=False) as pipe:
            for due in DUE_INDEXES:
                read(pipe, due)
            replies: list[Any] = await self._bounded(pipe.execute(raise_on_error=False))
        return replies

    @staticmethod
    def _result(reply: list[Any]) -> Result:
        outcome = _OUTCOMES.get(reply[0]) or Outcome(_text(reply[0]))
        if len(reply) < 7:
            return Result(outcome, _state(reply[1]) if len(reply) > 1 else None)
        return Result(
            outcome,
            _state(reply[1]),
            int(reply[2]), int(reply[3]), int(reply[4]), int(reply[5]),
            tuple(_text(e) for e in reply[7:]),
            int(reply[6]),
        )

    async def create(self, digest: str, subject: str, timing: Timing, now_ms: int) -> Result | None:
        """None when the key already exists (a 256-bit id collision: the caller retries)."""
        reply = await self._run(CREATE, self._call(
            digest, now_ms, [timing.idle_ms, timing.prompt_ms, timing.grace_ms, timing.max_lifetime_ms, subject],
        ))
        if _text(reply[0]) == "exists":
            return None
        return Result(Outcome.OK, State(_text(reply[1])), int(reply[2]), int(reply[3]), int(reply[4]),
                      int(reply[5]), ("created",), int(reply[6]))

    async def touch(self, digest: str, mode: Literal["activity", "keepalive"], now_ms: int) -> Result:
        return self._result(await self._touches.submit((digest, mode, now_ms)))

    async def _flush_touches(self, touches: list[tuple[str, str, int]]) -> list[Any]:
        groups = self._calls_of([digest for digest, _, _ in touches])
        calls: list[Call] = []
        for bucket, indexes in groups.items():
            mine = [touches[index] for index in indexes]
            buckets = [bucket_of(digest) for digest, _, _ in mine]
            # each bucket's due index and stream once, in order of first use (the call's
            # bucket first); a touch names the KEYS position of its bucket's due index
            firsts = list(dict.fromkeys(buckets))
            position = {b: 2 * i + 1 for i, b in enumerate(firsts)}
            keys = [key for b in firsts for key in (due_index(b), session_events_stream(b))]
            _, args = self._head(bucket, mine[0][2])
            records = "\n".join([
                f"{now_ms} {digest} {mode} {position[b]}"
                for (digest, mode, now_ms), b in zip(mine, buckets, strict=True)
            ])
            calls.append((
                [*keys, *(session_key(digest) for digest, _, _ in mine)], [*args, records, len(keys) + 1],
            ))
        return _spread(groups, await self._runner.run_many(TOUCH, calls), len(touches))

    def _calls_of(self, digests: Sequence[str]) -> dict[int, list[int]]:
        """Item indexes per script call, keyed by the bucket whose keys the call names
        first. On a cluster a script's keys must share a slot: one call per bucket. On one
        server slots do not bind: one call for the whole batch, since each call has a cost
        of its own (in redis-py's pipeline, and in the script's setup) that the reads of
        ~14 buckets of a batch of 32 paid 14 times."""
        if self._cluster:
            return _by_bucket(digests)
        return {bucket_of(digests[0]): list(range(len(digests)))}

    async def _flush_reads(self, digests: list[str]) -> list[Any]:
        groups = self._calls_of(digests)
        calls: list[Call] = [
            ([due_index(bucket), *(session_key(digests[index]) for index in indexes)], [])
            for bucket, indexes in groups.items()
        ]
        return _spread(groups, await self._runner.run_many(READ_MANY, calls, write=False), len(digests))

    async def end(self, digest: str, now_ms: int) -> Result:
        reply = await self._run(END, self._call(digest, now_ms, []))
        outcome = Outcome(_text(reply[0]))
        state = State(_text(reply[1])) if len(reply) > 1 else None
        return Result(outcome, state, emitted=tuple(_text(e) for e in reply[2:]))

    async def announce_due(self, now_ms: int) -> DueStep:
        """Settle the due sessions of every bucket (up to the batch size each): read each
        bucket's due members (no script), then one script call per bucket that has some,
        declaring their hashes and re-checking each atomically. Buckets that fail are
        reported, not raised; the step fails (raises) only when every bucket failed."""
        batch = self._settings.scheduler_batch
        heads = await self._per_bucket(lambda client, due: client.zrangebyscore(due, "-inf", now_ms, 0, batch))
        failures = [head for head in heads if isinstance(head, BaseException)]
        if len(failures) == len(heads):
            raise failures[0]
        calls: list[Call] = []
        more = False
        for bucket, head in enumerate(heads):
            if isinstance(head, BaseException) or not head:
                continue
            digests = [_text(member) for member in head]
            keys, args = self._head(bucket, now_ms)
            calls.append(([*keys, *(session_key(digest) for digest in digests)], [*args, "\n".join(digests)]))
            more = more or len(digests) >= batch
        replies = await self._bounded(self._runner.run_many(ANNOUNCE, calls)) if calls else []
        events: list[tuple[str, int]] = []
        for reply in replies:
            if isinstance(reply, BaseException):
                failures.append(reply)
                continue
            events.extend((_text(reply[i]), int(float(_text(reply[i + 1])))) for i in range(0, len(reply), 2))
        return DueStep(events, more, failures)

    async def read(self, digest: str) -> StoredSession | None:
        """The stored times, for status reads: no write, never extends."""
        created, last, idle, prompt, grace, maxlife, state, version = await self._reads.submit(digest)
        if not state:
            return None
        try:  # int() takes the reply's bytes as they are
            return StoredSession(
                int(created), int(last), Timing(int(idle), int(prompt), int(grace), int(maxlife)), _text(state),
                int(version or 0),
            )
        except ValueError:
            return None  # missing, partly written or foreign: treat as unknown

    def refusing(self, pinged: bool = False) -> bool:
        """Status reads or touches are refused now (storage failed a moment ago)."""
        reads, touches = self._reads.refusing(pinged), self._touches.refusing(pinged)
        return reads or touches

    async def close(self) -> None:
        await self._reads.close()
        await self._touches.close()

    async def next_due_ms(self) -> int | None:
        """The earliest due time over the buckets that answered (raises if none did)."""
        heads = await self._per_bucket(lambda client, due: client.zrange(due, 0, 0, withscores=True))
        answered = [head for head in heads if not isinstance(head, BaseException)]
        if not answered:
            raise heads[0]
        firsts = [int(head[0][1]) for head in answered if head]
        return min(firsts) if firsts else None

    async def live_count(self) -> int:
        """Sessions in the due indexes of every bucket (raises if any bucket failed)."""
        counts = await self._per_bucket(lambda client, due: client.zcard(due))
        for count in counts:
            if isinstance(count, BaseException):
                raise count
        return sum(int(count) for count in counts)
