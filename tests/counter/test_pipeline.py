"""The ingest pipeline: named steps in order, and each drop reason counted and reported."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp import ClientResponse

from portal_pulse.core.errors import ApiError
from portal_pulse.counter.hit import Kind, Outcome
from portal_pulse.counter.keys import SiteKeys
from portal_pulse.counter.pipeline import MAX_SEQ, parse_kind
from portal_pulse.counter.state import PIPELINE
from tests.counter.conftest import BROWSER_UA, GOOGLEBOT, Counter, CounterFactory, counter_settings
from tests.counter.test_dimensions import table, top
from tests.metric_samples import sample


async def hits_metric(counter: Counter, result: str, kind: str = "pageview") -> float:
    text = await (await counter.client.get("/metrics")).text()
    return sample(text, "pulse_ingest_hits_total", kind=kind, result=result, site="default")


def test_steps_run_in_the_documented_order(vcounter: Counter) -> None:
    names = [name for name, _ in vcounter.app[PIPELINE].steps]
    assert names == ["filter_bot", "filter_origin", "enrich_client", "enrich_visitor", "validate",
                     "enrich_dimensions"]


def test_drop_reasons_are_a_closed_set() -> None:
    assert {o.value for o in Outcome} == {"counted", "bot", "duplicate", "rate_limited", "origin"}


async def test_counted(vcounter: Counter) -> None:
    response = await vcounter.hit()
    assert response.headers["X-Pulse-Counted"] == "1"
    assert await hits_metric(vcounter, "counted") == 1
    text = await (await vcounter.client.get("/metrics")).text()
    assert sample(text, "pulse_ingest_visits_total", site="default") == 1
    assert sample(text, "pulse_ingest_pageviews_total", site="default") == 1


async def test_drop_bot(vcounter: Counter) -> None:
    response = await vcounter.hit(ua=GOOGLEBOT)
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=bot"
    assert await hits_metric(vcounter, "bot") == 1
    assert await hits_metric(vcounter, "counted") == 0


async def test_drop_duplicate(vcounter: Counter) -> None:
    await vcounter.hit(id="same", kind="download", path="/f")
    response = await vcounter.hit(id="same", kind="download", path="/f")
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=duplicate"
    assert await hits_metric(vcounter, "duplicate", kind="download") == 1


async def test_drop_rate_limited(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, max_hits_per_visitor_per_minute=1)
    await counter.hit(kind="heartbeat")
    response = await counter.hit(kind="heartbeat")
    assert response.status == 204
    assert response.headers["X-Pulse-Counted"] == "0; reason=rate_limited"
    assert await hits_metric(counter, "rate_limited", kind="heartbeat") == 1


async def test_drop_reasons_with_the_pixel(vcounter: Counter) -> None:
    response = await vcounter.client.get("/v1/hit.gif", params={"site": "default"},
                                         headers={"User-Agent": GOOGLEBOT})
    assert response.headers["X-Pulse-Counted"] == "0; reason=bot"


# --- What each field of a hit does, through both transports (the JSON body and the pixel).

SEQ_MESSAGE = f"seq: expected a whole number from 0 to {MAX_SEQ}"


async def pixel(counter: Counter, ua: str = BROWSER_UA, headers: dict[str, str] | None = None,
                **params: str) -> ClientResponse:
    response = await counter.client.get("/v1/hit.gif", params={"site": "default", **params},
                                        headers={"User-Agent": ua, **(headers or {})})
    await response.read()
    return response


async def error_of(response: ClientResponse) -> tuple[int, str, str]:
    body = await response.json()
    return response.status, body["error"]["code"], body["error"]["message"]


@pytest.mark.parametrize("seq", ["x", "1a", "-1", "١", "0" * 17, str(MAX_SEQ + 1), " 1"])
async def test_a_bad_pixel_sequence_number_is_refused(vcounter: Counter, seq: str) -> None:
    assert await error_of(await pixel(vcounter, seq=seq)) == (400, "invalid_query", SEQ_MESSAGE)


@pytest.mark.parametrize("seq", [-1, MAX_SEQ + 1])
async def test_a_bad_body_sequence_number_is_refused(vcounter: Counter, seq: int) -> None:
    response = await vcounter.hit(seq=seq)
    assert await error_of(response) == (400, "invalid_body", SEQ_MESSAGE)


@pytest.mark.parametrize("seq", ["0", str(MAX_SEQ), "0" * 16, ""])
async def test_pixel_sequence_numbers_from_0_to_the_largest_exact_integer(vcounter: Counter, seq: str) -> None:
    response = await pixel(vcounter, seq=seq)
    assert (response.status, response.headers["X-Pulse-Counted"]) == (200, "1")


@pytest.mark.parametrize("seq", [0, MAX_SEQ])
async def test_body_sequence_numbers_from_0_to_the_largest_exact_integer(vcounter: Counter, seq: int) -> None:
    response = await vcounter.hit(seq=seq)
    assert (response.status, response.headers["X-Pulse-Counted"]) == (204, "1")


async def test_a_resent_sequence_number_is_a_duplicate(vcounter: Counter) -> None:
    """Another path, the same sequence number: a retry (not a dedupe of the same page)."""
    sent = [await pixel(vcounter, visitor="px", path=path, seq=seq) for path, seq in (("/a", "5"), ("/b", "5"))]
    sent += [await vcounter.hit(visitor="js", path=path, seq=seq) for path, seq in (("/a", 5), ("/b", 5))]
    assert [r.headers["X-Pulse-Counted"] for r in sent] == ["1", "0; reason=duplicate"] * 2
    assert (await pixel(vcounter, visitor="px", path="/c", seq="6")).headers["X-Pulse-Counted"] == "1"


@pytest.mark.parametrize(("value", "member"), [(None, False), ("1", True), ("true", True), ("0", False),
                                               ("false", False)])
async def test_the_pixel_member_flag(vcounter: Counter, value: str | None, member: bool) -> None:
    response = await (pixel(vcounter) if value is None else pixel(vcounter, member=value))
    assert response.status == 200
    breakdown = (await vcounter.stats())["online_breakdown"]
    assert (breakdown["members"], breakdown["guests"]) == ((1, 0) if member else (0, 1))


async def test_a_bad_pixel_member_flag_is_refused(vcounter: Counter) -> None:
    expected = (400, "invalid_query", "member: expected 1, 0, true or false")
    assert await error_of(await pixel(vcounter, member="maybe")) == expected


async def test_the_pixel_carries_visitor_path_referrer_and_campaign(vcounter: Counter) -> None:
    await pixel(vcounter, visitor="px", referrer="https://www.google.com/search?q=x", query="?utm_source=zalo")
    await pixel(vcounter, ua=BROWSER_UA + " Edg/131", visitor="px", path="/two")  # another browser, one visitor
    stats = await vcounter.stats()
    assert (stats["total"], stats["pageviews"]["total"]) == (1, 2)
    assert table(await top(vcounter, "pages")) == {"/": (1, 1), "/two": (0, 1)}  # no path: the root
    assert table(await top(vcounter, "referrers")) == {"google.com": (1, 1), "(direct)": (0, 1)}
    assert table(await top(vcounter, "campaigns")) == {"zalo / (none) / (none)": (1, 1)}


async def test_an_empty_path_is_refused(vcounter: Counter) -> None:
    assert await error_of(await vcounter.hit(path="")) == (400, "invalid_body", "path: must not be empty")
    assert await error_of(await pixel(vcounter, path="")) == (400, "invalid_body", "path: must not be empty")


async def test_a_scheme_relative_referer_names_no_origin(vcounter: Counter) -> None:
    response = await pixel(vcounter, headers={"Referer": "//portal.test/page"})
    assert (response.status, response.headers["X-Pulse-Counted"]) == (200, "0; reason=origin")


async def with_site_origins(start_counter: CounterFactory, url: str, origins: tuple[str, ...],
                            **counter: Any) -> Counter:
    settings = counter_settings(url, **counter)
    sites = tuple(dataclasses.replace(site, origins=origins) if site.name == "default" else site
                  for site in settings.sites)
    return await start_counter(url, settings=dataclasses.replace(settings, sites=sites).validate())


async def test_an_https_origin_is_allowed_through_the_referer(valkey_url: str,
                                                              start_counter: CounterFactory) -> None:
    counter = await with_site_origins(start_counter, valkey_url, ("https://portal.test",))
    response = await pixel(counter, headers={"Referer": "https://portal.test/news/1"})
    assert response.headers["X-Pulse-Counted"] == "1"
    response = await pixel(counter, headers={"Referer": "http://portal.test/news/1"})
    assert response.headers["X-Pulse-Counted"] == "0; reason=origin"


async def test_a_site_open_to_any_origin(valkey_url: str, start_counter: CounterFactory) -> None:
    counter = await with_site_origins(start_counter, valkey_url, ("*",))
    response = await counter.hit(headers={"Origin": "http://anywhere.test"})
    assert (response.status, response.headers["X-Pulse-Counted"]) == (204, "1")
    response = await pixel(counter, headers={"Referer": "ftp://anywhere.test/x"})
    assert response.headers["X-Pulse-Counted"] == "1"


async def test_visitors_without_the_rate_limits(valkey_url: str, start_counter: CounterFactory) -> None:
    """With the limits off, a page's visitor id is the visitor whatever the browser, and a
    hit without one is the salted (address, browser) digest."""
    counter = await start_counter(valkey_url, rate_limits_enabled=False)
    await counter.hit(visitor="a")
    await counter.hit(visitor="a", ua=BROWSER_UA + " Edg/131", path="/2")
    await counter.hit(visitor="b")
    assert (await pixel(counter)).headers["X-Pulse-Counted"] == "1"
    await pixel(counter, path="/2")  # the same address and browser: the same visitor
    await pixel(counter, ua=BROWSER_UA + " Edg/131")  # another browser: another visitor
    stats = await counter.stats()
    assert (stats["total"], stats["pageviews"]["total"]) == (4, 6)


async def visitor_digests(counter: Counter, site: str) -> set[str]:
    prefix = SiteKeys(site).visitor("")
    return {key.decode()[len(prefix):] async for key in counter.app_redis().scan_iter(match=prefix + "*")}


async def address_digests(counter: Counter, site: str) -> set[str]:
    """The digests of client addresses in the per-address rate-limit counters (fields
    ``i:<digest>`` of the minutes' hashes)."""
    redis = counter.app_redis()
    found: set[str] = set()
    async for key in redis.scan_iter(match=SiteKeys(site).prefix + "rate:minute:*"):
        fields = [field.decode() if isinstance(field, bytes) else field for field in await redis.hkeys(key)]
        found |= {field[2:] for field in fields if field.startswith("i:")}
    return found


@pytest.mark.parametrize("limits", [True, False])
async def test_visitor_digests_are_per_site(valkey_url: str, start_counter: CounterFactory, limits: bool) -> None:
    """The same person on two sites is two unrelated digests, page id or not."""
    counter = await start_counter(valkey_url, rate_limits_enabled=limits)
    await counter.hit(visitor="same")
    await counter.hit(site="news", visitor="same", headers={"Origin": "http://news.test"})
    await pixel(counter)
    await pixel(counter, site="news")
    default, news = await visitor_digests(counter, "default"), await visitor_digests(counter, "news")
    assert len(default) == len(news) == 2
    assert not default & news
    addresses = await address_digests(counter, "default"), await address_digests(counter, "news")
    assert [len(digests) for digests in addresses] == ([1, 1] if limits else [0, 0])
    assert not addresses[0] & addresses[1]


async def test_the_pixel_visitor_changes_with_the_local_day(vcounter: Counter) -> None:
    await pixel(vcounter)
    vcounter.clock.advance(86_400)
    await pixel(vcounter)
    assert len(await visitor_digests(vcounter, "default")) == 2


async def test_event_ids_are_per_site(vcounter: Counter) -> None:
    first = await vcounter.hit(visitor="v", id="evt", kind="download", path="/f")
    other = await vcounter.hit(site="news", visitor="v", id="evt", kind="download", path="/f",
                               headers={"Origin": "http://news.test"})
    assert first.headers["X-Pulse-Counted"] == other.headers["X-Pulse-Counted"] == "1"


async def test_a_pixel_without_a_user_agent_is_a_bot(vcounter: Counter) -> None:
    response = await vcounter.client.get("/v1/hit.gif", params={"site": "default"},
                                         skip_auto_headers=["User-Agent"])
    assert response.status == 200
    assert response.headers["X-Pulse-Counted"] == "0; reason=bot"
    assert (await vcounter.stats())["online_breakdown"]["bots"] == 1


@pytest.mark.parametrize(("body", "status", "code", "message"), [
    ({"site": ""}, 400, "missing_site", "site: required"),
    ({"site": "nowhere"}, 404, "unknown_site", "site: not configured"),
    ({"site": "default", "kind": "click"}, 400, "unknown_kind", "kind: expected one of download, heartbeat, pageview"),
])
async def test_refusals_say_what_is_wrong(vcounter: Counter, body: dict[str, Any], status: int, code: str,
                                         message: str) -> None:
    response = await vcounter.client.post("/v1/hit", json=body, headers={"User-Agent": BROWSER_UA})
    assert await error_of(response) == (status, code, message)
    assert await error_of(await pixel(vcounter, **body)) == (status, code, message)


@pytest.mark.parametrize(("field", "limit"), [("path", "max_path_length"), ("visitor", "max_visitor_length"),
                                              ("id", "max_event_id_length"), ("referrer", "max_referrer_length")])
async def test_an_over_long_field_is_named(vcounter: Counter, field: str, limit: str) -> None:
    size = getattr(vcounter.settings.counter, limit)
    response = await vcounter.hit(**{field: "/" * (size + 1)})
    assert await error_of(response) == (400, "field_too_long", f"{field}: at most {size} characters")


async def test_an_unconfigured_origin_is_named_in_the_refusal(vcounter: Counter) -> None:
    response = await vcounter.hit(headers={"Origin": "http://evil.test"})
    assert await error_of(response) == (403, "origin_not_allowed",
                                        "this origin is not configured for site 'default'")


def test_a_kind_is_its_member_by_exact_name() -> None:
    for kind in Kind:
        assert parse_kind(kind.value) is kind
    for name in ("PAGEVIEW", "Pageview", "p", "", " pageview", "pageview ", "click"):
        with pytest.raises(ApiError) as raised:
            parse_kind(name)
        assert (raised.value.status, raised.value.code) == (400, "unknown_kind")
