"""Per-path views and downloads (once per visit per path) and event-id dedupe."""

from __future__ import annotations

from typing import Any

from tests.counter.conftest import Counter


async def page(counter: Counter, path: str) -> dict[str, Any]:
    response = await counter.client.get("/v1/pages", params={"site": "default", "path": path})
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def test_views_count_once_per_visit_per_path(counter: Counter) -> None:
    for _ in range(3):
        await counter.hit(path="/tin-tuc/1")
    await counter.hit(path="/tin-tuc/2")
    await counter.hit(path="/tin-tuc/1", visitor="someone-else")
    assert await page(counter, "/tin-tuc/1") == {"site": "default", "path": "/tin-tuc/1", "views": 2, "downloads": 0}
    assert (await page(counter, "/tin-tuc/2"))["views"] == 1
    counter.clock.advance(1800)  # a new visit: the article may be viewed again
    await counter.hit(path="/tin-tuc/1")
    assert (await page(counter, "/tin-tuc/1"))["views"] == 3
    assert (await counter.stats())["pageviews"]["total"] == 6


async def test_downloads_count_once_per_visit_per_path(counter: Counter) -> None:
    await counter.hit(path="/van-ban/1")
    for _ in range(3):
        response = await counter.hit(kind="download", path="/files/report.pdf")
        assert response.headers["X-Pulse-Counted"] == "1"
    assert await page(counter, "/files/report.pdf") == {
        "site": "default", "path": "/files/report.pdf", "views": 0, "downloads": 1}
    counter.clock.advance(1800)
    await counter.hit(path="/van-ban/1")
    await counter.hit(kind="download", path="/files/report.pdf")
    assert (await page(counter, "/files/report.pdf"))["downloads"] == 2
    stats = await counter.stats()
    assert stats["pageviews"]["total"] == 2  # downloads are not pageviews


async def test_unknown_path_has_zero_figures(counter: Counter) -> None:
    assert await page(counter, "/never") == {"site": "default", "path": "/never", "views": 0, "downloads": 0}


async def test_same_event_id_counts_once(counter: Counter) -> None:
    first = await counter.hit(id="evt-1")
    assert first.headers["X-Pulse-Counted"] == "1"
    retry = await counter.hit(id="evt-1")
    assert retry.status == 204
    assert retry.headers["X-Pulse-Counted"] == "0; reason=duplicate"
    other = await counter.hit(id="evt-2")
    assert other.headers["X-Pulse-Counted"] == "1"
    assert (await counter.stats())["pageviews"]["total"] == 2


async def test_event_ids_are_per_site(counter: Counter) -> None:
    await counter.hit(id="same")
    response = await counter.hit(id="same", site="news", headers={"Origin": "http://news.test"})
    assert response.headers["X-Pulse-Counted"] == "1"


async def test_duplicate_with_stats_still_answers_the_stats(counter: Counter) -> None:
    await counter.hit(id="e")
    response = await counter.hit(id="e", query="?stats=1")
    assert response.status == 200
    assert response.headers["X-Pulse-Counted"] == "0; reason=duplicate"
    assert (await response.json())["pageviews"]["total"] == 1
