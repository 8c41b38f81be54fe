"""Server-sent events end to end: a tab on process A hears what process B and the
schedulers announce, through each process's single pub/sub listener."""

from __future__ import annotations

import pytest

from portal_pulse.core.clock import ManualClock
from portal_pulse.session.app_state import SCHEDULER
from tests.metric_samples import sample
from tests.session.session_support import ClientFactory, create, next_event, session_settings, start


async def test_a_tab_on_a_hears_b_and_the_schedulers(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    settings = session_settings(valkey_url)
    a = await start(make_client, settings, clock)
    b = await start(make_client, settings, clock)
    sid = (await create(b))["id"]
    tab = await a.get(f"/v1/sessions/{sid}/events", headers={"Origin": "http://portal.test"})
    assert tab.status == 200
    assert tab.headers["Content-Type"].startswith("text/event-stream")
    assert tab.headers["Access-Control-Allow-Origin"] == "http://portal.test"
    kind, snapshot = await next_event(tab)
    assert (kind, snapshot["state"], snapshot["remaining"], snapshot["id"]) == ("state", "active", 60, sid)
    assert sample(await (await a.get("/metrics")).text(), "pulse_session_event_streams") == 1

    clock.advance(50)
    await b.app[SCHEDULER].run_once()
    kind, data = await next_event(tab)
    assert (kind, data["type"], data["state"], data["remaining"], data["id"]) == ("prompt", "prompt", "prompt", 10, sid)
    assert "subject" not in data

    clock.advance(5)
    assert (await b.post(f"/v1/sessions/{sid}/keepalive")).status == 200
    kind, data = await next_event(tab)
    assert (kind, data["state"], data["remaining"], data["prompt_in"]) == ("extended", "active", 60, 50)

    clock.advance(100)
    await a.app[SCHEDULER].run_once()
    await b.app[SCHEDULER].run_once()
    kind, data = await next_event(tab)
    assert (kind, data["state"]) == ("expired", "expired")
    with pytest.raises(EOFError):
        await next_event(tab)
    tab.close()


async def test_a_click_on_a_process_whose_clock_is_behind_still_reaches_the_tab(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    """Two processes' clocks disagree by 5 s (NTP drift between hosts). The tab is on A,
    whose clock is ahead; the click lands on B. B's event is stamped with B's time, older
    than A's snapshot: ordering by clocks would drop it as already seen, and the tab would
    keep counting down a session that was extended. Events are ordered by the session's
    version instead."""
    settings = session_settings(valkey_url)
    ahead = ManualClock(clock.now() + 5)
    a = await start(make_client, settings, ahead)
    b = await start(make_client, settings, clock)
    sid = (await create(b))["id"]
    clock.advance(50)
    ahead.advance(50)
    await b.app[SCHEDULER].run_once()
    tab = await a.get(f"/v1/sessions/{sid}/events")
    kind, snapshot = await next_event(tab)
    assert (kind, snapshot["state"]) == ("state", "prompt")  # the prompt came before the tab

    clock.advance(1)
    ahead.advance(1)
    assert (await b.post(f"/v1/sessions/{sid}/keepalive")).status == 200
    kind, data = await next_event(tab)
    assert (kind, data["state"], data["remaining"]) == ("extended", "active", 60)
    tab.close()


async def test_logout_ends_every_tab_and_reading_never_extends(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    settings = session_settings(valkey_url)
    a = await start(make_client, settings, clock)
    b = await start(make_client, settings, clock)
    sid = (await create(a))["id"]
    tabs = [await c.get(f"/v1/sessions/{sid}/events") for c in (a, b, a)]
    for tab in tabs:
        assert (await next_event(tab))[0] == "state"
    clock.advance(30)
    assert (await (await a.get(f"/v1/sessions/{sid}")).json())["remaining"] == 30
    assert (await b.delete(f"/v1/sessions/{sid}")).status == 204
    for tab in tabs:
        kind, data = await next_event(tab)
        assert (kind, data["state"]) == ("ended", "ended")
        with pytest.raises(EOFError):
            await next_event(tab)
        tab.close()
    late = await a.get(f"/v1/sessions/{sid}/events")
    assert (await next_event(late))[1]["state"] == "ended"
    with pytest.raises(EOFError):
        await next_event(late)
    late.close()


async def test_streams_per_session_are_capped(
    valkey_url: str, make_client: ClientFactory, clock: ManualClock
) -> None:
    client = await start(make_client, session_settings(valkey_url, max_streams_per_session=2), clock)
    sid = (await create(client))["id"]
    tabs = [await client.get(f"/v1/sessions/{sid}/events") for _ in range(2)]
    for tab in tabs:
        await next_event(tab)
    refused = await client.get(f"/v1/sessions/{sid}/events")
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "too_many_streams"
    other = (await create(client))["id"]
    ok = await client.get(f"/v1/sessions/{other}/events")
    assert ok.status == 200
    for tab in [*tabs, ok]:
        tab.close()
