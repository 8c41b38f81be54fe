"""The thin storage layer: one Lua script per operation, so every state change, its
due-time update and its event (stream + pub/sub) happen atomically and exactly once.

Scripts run through the core ``ScriptRunner`` (NOSCRIPT and replica acknowledgements
handled there). Every call is bounded in time: a Redis that does not answer raises
``TimeoutError`` (one of ``STORAGE_ERRORS``), which the web layer turns into 503 +
Retry-After. Status reads and touches, the hot calls, go through the core ``Batcher``:
one script call per event-loop turn for all concurrent requests (``read_many.lua``,
``touch.lua``), with its bounded queue, timeout and circuit breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis

from services.core.batch_metrics import BatchMetrics
from services.core.batcher import Batcher
from services.core.scripts import Script, ScriptRunner
from services.core.settings import SessionSettings
from services.session.keys import (
    DUE_INDEX,
    SESSION_EVENTS_CHANNEL,
    SESSION_EVENTS_STREAM,
    SESSION_KEY_PREFIX,
    session_key,
)
from services.session.state_machine import Evaluation, State, Timing, evaluate

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


@dataclass(frozen=True, slots=True)
class StoredSession:
    created_ms: int
    last_activity_ms: int
    timing: Timing
    announced: str

    def at(self, now_ms: int) -> Evaluation:
        return evaluate(self.last_activity_ms, self.created_ms, self.timing, self.announced == State.ENDED, now_ms)


def _source(name: str) -> str:
    return (files("services.session") / name).read_text(encoding="utf-8")


def script_source(name: str) -> str:
    """A script with the shared prelude in front of it."""
    return _source("session_prelude.lua") + "\n" + _source(name)


CREATE = Script("create", script_source("create.lua"))
TOUCH = Script("touch", script_source("touch.lua"))
END = Script("end", script_source("end_session.lua"))
ANNOUNCE = Script("announce_due", script_source("announce_due.lua"))
READ_MANY = Script("read_many", _source("read_many.lua"))
SCRIPTS = (CREATE, TOUCH, END, ANNOUNCE, READ_MANY)
#: The batchers' bounds: items per script call, calls waiting, script calls at once.
MAX_BATCH, MAX_PENDING, IN_FLIGHT = 512, 8192, 2


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_OUTCOMES = {outcome.value.encode(): outcome for outcome in Outcome}
_STATES = {state.value.encode(): state for state in State}


def _state(value: Any) -> State:
    return _STATES.get(value) or State(_text(value))


class SessionStore:
    def __init__(
        self, client: Redis, runner: ScriptRunner, settings: SessionSettings, timeout_seconds: float,
        batches: BatchMetrics,
    ) -> None:
        self._client = client
        self._runner = runner
        self._settings = settings
        self._timeout = timeout_seconds
        #: Status reads and touches of concurrent requests: one script call per batch.
        self._reads: Batcher[str, list[Any]] = Batcher(
            self._flush_reads, batches.operation("read"), max_batch=MAX_BATCH, max_pending=MAX_PENDING,
            in_flight=IN_FLIGHT, timeout_seconds=timeout_seconds,
        )
        self._touches: Batcher[tuple[str, str, int], list[Any]] = Batcher(
            self._flush_touches, batches.operation("touch"), max_batch=MAX_BATCH, max_pending=MAX_PENDING,
            in_flight=IN_FLIGHT, timeout_seconds=timeout_seconds,
        )

    async def load_scripts(self) -> None:
        await self._runner.load(*SCRIPTS)

    async def _bounded(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout):
            return await call

    async def _run(self, script: Script, now_ms: int, extra_keys: list[str], extra_args: list[Any]) -> list[Any]:
        keys = [DUE_INDEX, SESSION_EVENTS_STREAM, *extra_keys]
        args = [now_ms, self._settings.stream_maxlen, SESSION_EVENTS_CHANNEL, TOMBSTONE_MS, *extra_args]
        reply = await self._bounded(self._runner.run(script, keys, args))
        return list(reply)

    @staticmethod
    def _result(reply: list[Any]) -> Result:
        outcome = _OUTCOMES.get(reply[0]) or Outcome(_text(reply[0]))
        if len(reply) < 6:
            return Result(outcome, _state(reply[1]) if len(reply) > 1 else None)
        return Result(
            outcome,
            _state(reply[1]),
            int(reply[2]), int(reply[3]), int(reply[4]), int(reply[5]),
            tuple(_text(e) for e in reply[6:]),
        )

    async def create(self, digest: str, subject: str, timing: Timing, now_ms: int) -> Result | None:
        """None when the key already exists (a 256-bit id collision: the caller retries)."""
        reply = await self._run(
            CREATE, now_ms, [session_key(digest)],
            [digest, timing.idle_ms, timing.prompt_ms, timing.grace_ms, timing.max_lifetime_ms, subject],
        )
        if _text(reply[0]) == "exists":
            return None
        return Result(Outcome.OK, State(_text(reply[1])), int(reply[2]), int(reply[3]), int(reply[4]),
                      int(reply[5]), ("created",))

    async def touch(self, digest: str, mode: Literal["activity", "keepalive"], now_ms: int) -> Result:
        return self._result(await self._touches.submit((digest, mode, now_ms)))

    async def _flush_touches(self, touches: list[tuple[str, str, int]]) -> list[list[Any]]:
        records = "\n".join([f"{now_ms} {digest} {mode}" for digest, mode, now_ms in touches])
        args = [touches[0][2], self._settings.stream_maxlen, SESSION_EVENTS_CHANNEL, TOMBSTONE_MS, records]
        keys = [DUE_INDEX, SESSION_EVENTS_STREAM, *(session_key(digest) for digest, _, _ in touches)]
        return list(await self._runner.run(TOUCH, keys, args))

    async def _flush_reads(self, digests: list[str]) -> list[list[Any]]:
        keys = [DUE_INDEX, *(session_key(digest) for digest in digests)]
        reply = await self._runner.run(READ_MANY, keys, [], write=False)
        return list(reply)

    async def end(self, digest: str, now_ms: int) -> Result:
        reply = await self._run(END, now_ms, [session_key(digest)], [digest])
        outcome = Outcome(_text(reply[0]))
        state = State(_text(reply[1])) if len(reply) > 1 else None
        return Result(outcome, state, emitted=tuple(_text(e) for e in reply[2:]))

    async def announce_due(self, now_ms: int) -> list[tuple[str, int]]:
        """Settle every due session (up to the batch size): ``[(event type, due ms)]``."""
        reply = await self._run(
            ANNOUNCE, now_ms, [], [self._settings.scheduler_batch, SESSION_KEY_PREFIX]
        )
        return [(_text(reply[i]), int(float(_text(reply[i + 1])))) for i in range(0, len(reply), 2)]

    async def read(self, digest: str) -> StoredSession | None:
        """The stored times, for status reads: no write, never extends."""
        raw = await self._reads.submit(digest)
        try:
            created, last, idle, prompt, grace, maxlife, state = (_text(v) for v in raw)
            if not state:
                return None
            return StoredSession(
                int(created), int(last), Timing(int(idle), int(prompt), int(grace), int(maxlife)), state
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
        first = await self._bounded(self._client.zrange(DUE_INDEX, 0, 0, withscores=True))
        return int(first[0][1]) if first else None

    async def live_count(self) -> int:
        return int(await self._bounded(self._client.zcard(DUE_INDEX)))
