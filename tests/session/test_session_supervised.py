"""Background work cannot die quietly: an unexpected error in the scheduler of a running
app (real Valkey) is logged, the scheduler restarts, and /readyz answers 503 naming it
while it makes no progress; the event bus is supervised the same way."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from portal_pulse.core.clock import ManualClock
from portal_pulse.core.supervise import MAX_BACKOFF_SECONDS, backoff_seconds
from portal_pulse.session.app_state import BUS, STORE
from portal_pulse.session.store import DueStep
from tests.metric_samples import sample
from tests.session.session_support import T0, Client, ClientFactory, create, session_settings, start
from tests.waiting import eventually

STALE = 5.0


async def metrics(client: Client) -> str:
    return await (await client.get("/metrics")).text()


def test_backoff_doubles_and_is_bounded() -> None:
    assert [backoff_seconds(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert backoff_seconds(50) == MAX_BACKOFF_SECONDS == 10.0


async def test_an_injected_scheduler_error_restarts_it_and_fails_readiness_while_stale(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = session_settings(valkey_url, scheduler_max_sleep_seconds=0.02, background_stale_seconds=STALE)
    client = await start(make_client, settings, clock)
    await create(client)
    assert (await client.get("/readyz")).status == 200
    text = await metrics(client)
    assert sample(text, "pulse_background_last_success_timestamp_seconds", task="session-scheduler") == T0
    assert sample(text, "pulse_background_restarts_total", task="session-scheduler") == 0

    store = client.app[STORE]
    real_announce = store.announce_due
    broken = True

    async def announce_due(now_ms: int) -> DueStep:
        if broken:
            raise RuntimeError("injected scheduler fault")
        return await real_announce(now_ms)

    store.announce_due = announce_due  # type: ignore[method-assign]

    async def restarted_three_times() -> bool:
        return sample(await metrics(client), "pulse_background_restarts_total", task="session-scheduler") >= 3

    await eventually(restarted_three_times)
    failures = [r for r in caplog.records if r.getMessage().startswith("background task session-scheduler failed;")]
    assert failures and failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None and "injected scheduler fault" in str(failures[0].exc_info[1])
    # the backoff doubles while the task keeps failing without a success in between
    assert [r.getMessage().rsplit(" ", 1)[1] for r in failures[:3]] == ["0.1s", "0.2s", "0.4s"]

    clock.advance(STALE - 1)
    assert (await client.get("/readyz")).status == 200  # failing, but not yet stale
    clock.advance(2)
    answers: list[tuple[int, dict[str, Any]]] = []

    async def only_the_scheduler_stale() -> bool:
        # the event bus, healthy, beats within a second of the clock's jump
        response = await client.get("/readyz")
        answers.append((response.status, await response.json()))
        return answers[-1][1].get("stale_tasks") == ["session-scheduler"]

    await eventually(only_the_scheduler_stale)
    status, body = answers[-1]
    assert status == 503
    assert body["error"]["code"] == "unavailable" and "session-scheduler" in body["error"]["message"]

    broken = False  # the fault clears: the restarted scheduler succeeds and readiness returns

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready, within=MAX_BACKOFF_SECONDS)
    text = await metrics(client)
    assert sample(text, "pulse_background_last_success_timestamp_seconds", task="session-scheduler") == T0 + STALE + 1
    clock.advance(60)  # past the idle timeout and grace: the restarted scheduler expires the session
    await eventually(lambda: expired(client))


async def expired(client: Client) -> bool:
    text = await metrics(client)
    return sample(text, "pulse_session_transitions_total", type="expired") == 1


async def test_the_event_bus_is_supervised_and_beats_while_subscribed(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = session_settings(valkey_url, background_stale_seconds=STALE)
    client = await start(make_client, settings, clock)
    bus = client.app[BUS]
    real_dispatch = bus.dispatch

    def dispatch(event: dict[str, object]) -> None:
        bus.dispatch = real_dispatch  # type: ignore[method-assign]
        raise RuntimeError("injected event bus fault")

    bus.dispatch = dispatch  # type: ignore[method-assign]
    await create(client)  # its "created" event reaches the listener, which fails once

    async def restarted() -> bool:
        return sample(await metrics(client), "pulse_background_restarts_total", task="session-event-bus") == 1

    await eventually(restarted)
    assert any("background task session-event-bus failed" in r.getMessage() for r in caplog.records)
    await eventually(lambda: resubscribed(client))
    clock.advance(STALE + 1)  # subscribed again: the bus beats on its own and stays fresh

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready)
    assert sample(await metrics(client), "pulse_background_restarts_total", task="session-event-bus") == 1


async def resubscribed(client: Client) -> bool:
    return client.app[BUS].subscribed.is_set()
