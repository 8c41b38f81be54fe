"""The no-JS pixel, trusted-proxy client addresses, CORS and per-site origin refusal."""

from __future__ import annotations

from tests.counter.conftest import BROWSER_UA, GOOGLEBOT, Counter, CounterFactory


async def pixel(counter: Counter, ua: str = BROWSER_UA, headers: dict[str, str] | None = None,
                **params: str) -> tuple[int, dict[str, str], bytes]:
    response = await counter.client.get("/v1/hit.gif", params={"site": "default", "path": "/", **params},
                                        headers={"User-Agent": ua, **(headers or {})})
    return response.status, dict(response.headers), await response.read()


async def test_pixel_answers_a_gif_that_is_never_cached(counter: Counter) -> None:
    status, headers, body = await pixel(counter)
    assert status == 200
    assert headers["Content-Type"] == "image/gif"
    assert headers["Cache-Control"] == "no-store, max-age=0"
    assert headers["X-Pulse-Counted"] == "1"
    assert body.startswith(b"GIF89a\x01\x00\x01\x00") and body.endswith(b";")  # 1x1
    assert (await counter.stats())["total"] == 1


async def test_pixel_visitor_is_the_salted_hash_of_ip_and_ua(counter: Counter) -> None:
    xff = {"X-Forwarded-For": "203.0.113.5"}
    await pixel(counter, headers=xff)
    await pixel(counter, headers=xff, path="/two")  # same IP and UA: same visitor, same visit
    await pixel(counter, headers={"X-Forwarded-For": "203.0.113.6"})  # another person
    await pixel(counter, headers=xff, ua=BROWSER_UA + " Edg/131")  # another browser
    stats = await counter.stats()
    assert stats["total"] == 3
    assert stats["pageviews"]["total"] == 4


async def test_pixel_bot_and_kind(counter: Counter) -> None:
    status, headers, _ = await pixel(counter, ua=GOOGLEBOT)
    assert (status, headers["X-Pulse-Counted"]) == (200, "0; reason=bot")
    status, headers, _ = await pixel(counter, kind="download", path="/f.pdf")
    assert headers["X-Pulse-Counted"] == "1"
    status, headers, _ = await pixel(counter, id="evt")
    status, headers, _ = await pixel(counter, id="evt")
    assert headers["X-Pulse-Counted"] == "0; reason=duplicate"


async def test_forwarded_for_is_trusted_only_from_a_trusted_proxy(valkey_url: str,
                                                                  start_counter: CounterFactory) -> None:
    # 127.0.0.1 (the test client) is trusted by default: the header names the client.
    trusting = await start_counter(valkey_url, max_new_visits_per_ip_per_hour=1)
    first = await trusting.hit(visitor="a", headers={"X-Forwarded-For": "203.0.113.1"})
    other = await trusting.hit(visitor="b", headers={"X-Forwarded-For": "203.0.113.2"})
    assert first.headers["X-Pulse-Counted"] == other.headers["X-Pulse-Counted"] == "1"


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(valkey_url: str,
                                                               start_counter: CounterFactory) -> None:
    counter = await start_counter(valkey_url, trusted_proxies=("10.0.0.0/8",), max_new_visits_per_ip_per_hour=1)
    first = await counter.hit(visitor="a", headers={"X-Forwarded-For": "203.0.113.1"})
    forged = await counter.hit(visitor="b", headers={"X-Forwarded-For": "203.0.113.2"})
    assert first.headers["X-Pulse-Counted"] == "1"
    # Both came from 127.0.0.1 whatever the header said: one new visit per hour allowed.
    assert forged.headers["X-Pulse-Counted"] == "0; reason=rate_limited"


async def test_a_configured_origin_gets_cors_headers(vcounter: Counter) -> None:
    response = await vcounter.hit(headers={"Origin": "http://portal.test"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://portal.test"


async def test_an_unconfigured_origin_is_refused_with_403(vcounter: Counter) -> None:
    response = await vcounter.hit(headers={"Origin": "http://evil.test"})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert (await vcounter.stats())["total"] == 0


async def test_an_origin_of_another_site_is_refused(vcounter: Counter) -> None:
    # news.test is configured, but for the "news" site only.
    response = await vcounter.hit(headers={"Origin": "http://news.test"})
    assert response.status == 403


async def test_pixel_checks_the_origin_too(vcounter: Counter) -> None:
    status, _, _ = await pixel(vcounter, headers={"Origin": "http://evil.test"})
    assert status == 403


async def test_preflight(vcounter: Counter) -> None:
    allowed = await vcounter.client.options("/v1/hit", headers={
        "Origin": "http://portal.test", "Access-Control-Request-Method": "POST"})
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://portal.test"
    refused = await vcounter.client.options("/v1/hit", headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST"})
    assert refused.status == 403


async def test_same_origin_pages_are_allowed(vcounter: Counter) -> None:
    own = f"http://{vcounter.client.host}:{vcounter.client.port}"
    response = await vcounter.hit(headers={"Origin": own})
    assert response.status == 204


async def test_pixel_honours_the_site_origins_through_referer(vcounter: Counter) -> None:
    status, headers, body = await pixel(vcounter, headers={"Referer": "https://evil.example/page"})
    assert status == 200 and headers["Content-Type"] == "image/gif" and body.startswith(b"GIF89a")
    assert headers["X-Pulse-Counted"] == "0; reason=origin"
    for referer in ("javascript:void(0)", "not a url", "http://news.test/"):  # news.test is the news site's
        assert (await pixel(vcounter, headers={"Referer": referer}))[1]["X-Pulse-Counted"] == "0; reason=origin"
    assert (await vcounter.stats())["total"] == 0
    status, headers, _ = await pixel(vcounter, headers={"Referer": "http://portal.test/tin-tuc/1?x=2"})
    assert headers["X-Pulse-Counted"] == "1"
    status, headers, _ = await pixel(vcounter, visitor="no-referer")  # no Referer: still counted
    assert headers["X-Pulse-Counted"] == "1"
    assert (await vcounter.stats())["pageviews"]["total"] == 2
    metrics = await (await vcounter.client.get("/metrics")).text()
    assert 'pulse_ingest_hits_total{kind="pageview",result="origin",site="default"} 4.0' in metrics
