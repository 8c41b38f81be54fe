"""The OpenAPI document covers every route the app serves, with the statuses it answers."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from tests.counter.conftest import Counter


async def document(counter: Counter) -> dict[str, Any]:
    response = await counter.client.get("/openapi.json")
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


async def test_every_route_is_documented(vcounter: Counter) -> None:
    doc = await document(vcounter)
    assert doc["openapi"].startswith("3.0")
    served = {
        (resource.canonical, route.method.lower())
        for resource in vcounter.app.router.resources()
        for route in resource
        if route.method not in ("HEAD", "*")
    }
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert served == documented


async def test_statuses_and_idempotency_are_documented(vcounter: Counter) -> None:
    paths = (await document(vcounter))["paths"]
    assert set(paths["/v1/hit"]["post"]["responses"]) == {"200", "204", "400", "403", "404", "413", "415", "503"}
    assert set(paths["/v1/admin/sites/{site}/baseline"]["put"]["responses"]) == {
        "200", "400", "401", "404", "413", "415", "503"}
    assert "Idempotent" in paths["/v1/admin/sites/{site}/baseline"]["put"]["description"]
    assert "Retry-After" in paths["/v1/stats"]["get"]["responses"]["503"]["headers"]


async def test_stats_schema_matches_a_real_answer(vcounter: Counter) -> None:
    schema = (await document(vcounter))["components"]["schemas"]["Stats"]
    stats = await vcounter.stats()
    assert set(schema["required"]) == set(stats)
    for name in ("online_breakdown", "pageviews", "visitors"):
        assert set(schema["properties"][name]["required"]) == set(stats[name])


async def test_field_limits_come_from_settings(vcounter: Counter) -> None:
    hit = (await document(vcounter))["components"]["schemas"]["Hit"]["properties"]
    assert hit["path"]["maxLength"] == vcounter.settings.counter.max_path_length
    assert hit["id"]["maxLength"] == vcounter.settings.counter.max_event_id_length


async def test_widget_is_served_and_the_demo_page_is_not(vcounter: Counter) -> None:
    widget = await vcounter.client.get("/widget.js")
    assert widget.status == 200
    assert widget.content_type == "text/javascript"
    assert widget.headers["Cache-Control"] == "public, max-age=300"
    assert await widget.read() == files("portal_pulse.counter").joinpath("static", "widget.js").read_bytes()
    assert (await vcounter.client.get("/demo.html")).status == 404  # the demo app serves the demo pages
