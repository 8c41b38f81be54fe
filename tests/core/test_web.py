"""The shared web helpers, through a real aiohttp app."""

from __future__ import annotations

import ipaddress

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError

from services.core.edge import edge_middleware
from services.core.errors import ApiError
from services.core.metrics import ServiceMetrics
from services.core.secret import Secret
from services.core.web import (
    TrustedNetworks,
    client_address,
    cors_headers,
    decode_json,
    parse_ip,
    read_body,
    require_token,
)
from tests.conftest import ClientFactory

TRUSTED = TrustedNetworks((ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")))


class Body(msgspec.Struct):
    name: str
    count: int = 0


def _app() -> web.Application:
    metrics = ServiceMetrics("test")
    app = web.Application(middlewares=[edge_middleware(metrics, lambda: ["https://ok.example"])])
    decoder = msgspec.json.Decoder(Body)
    token = Secret("right")

    async def echo(request: web.Request) -> web.Response:
        body = decode_json(await read_body(request, 64, 5.0), decoder)
        return web.json_response({"name": body.name})

    async def secret(request: web.Request) -> web.Response:
        require_token(request, token)
        return web.json_response({"ok": True})

    async def storage(request: web.Request) -> web.Response:
        raise RedisConnectionError("refused")

    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail /etc/passwd")

    async def refuse(request: web.Request) -> web.Response:
        raise ApiError(422, "nope", "refused")

    app.router.add_post("/echo", echo)
    app.router.add_get("/secret", secret)
    app.router.add_get("/storage", storage)
    app.router.add_get("/crash", crash)
    app.router.add_get("/refuse", refuse)
    app.router.add_get("/metrics", metrics.handle_metrics)
    return app


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"name": "a"}', 200, None),
        (b"", 400, "invalid_json"),
        (b"{", 400, "invalid_json"),
        (b'{"name": 1}', 400, "invalid_body"),
        (b"[" * 60, 400, "invalid_body"),
        (b"{\"name\": " + b"[" * 20 + b"]" * 20 + b"}", 400, "invalid_body"),
        (b'{"name": "' + b"x" * 100 + b'"}', 413, "body_too_large"),
        (b'{"name": "\xff\xfe"}', 400, "invalid_json"),
    ],
)
async def test_json_bodies(make_client: ClientFactory, body: bytes, status: int, code: str | None) -> None:
    client = await make_client(_app())
    response = await client.post("/echo", data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    if code:
        assert (await response.json())["error"]["code"] == code


async def test_errors_are_json_and_leak_nothing(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    for path, status, code in [
        ("/nowhere", 404, "not_found"), ("/refuse", 422, "nope"), ("/crash", 500, "internal"),
        ("/storage", 503, "unavailable"),
    ]:
        response = await client.get(path)
        assert response.status == status, path
        payload = await response.json()
        assert payload["error"]["code"] == code
        assert "passwd" not in await response.text()
    response = await client.get("/storage")
    assert response.headers["Retry-After"] == "1"
    response = await client.delete("/echo")
    assert response.status == 405 and (await response.json())["error"]["code"] == "method_not_allowed"


async def test_tokens(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    assert (await client.get("/secret")).status == 401
    assert (await client.get("/secret", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/secret", headers={"Authorization": "Basic right"})).status == 401
    response = await client.get("/secret", headers={"Authorization": "Bearer right"})
    assert response.status == 200


def test_no_token_configured_closes_the_endpoint() -> None:
    request = make_mocked_request("GET", "/", headers={"Authorization": "Bearer anything"})
    with pytest.raises(ApiError) as raised:
        require_token(request, None)
    assert raised.value.status == 401


async def test_cors_only_for_configured_origins(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    preflight = {"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}
    response = await client.options("/echo", headers=preflight)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    response = await client.options("/echo", headers={**preflight, "Origin": "https://evil.example"})
    assert response.status == 403
    response = await client.post("/echo", data=b'{"name":"a"}', headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert cors_headers(None, ["*"]) == {}
    assert cors_headers("https://any.example", ["*"])["Access-Control-Allow-Origin"] == "https://any.example"


async def test_request_metrics_use_route_templates(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    await client.get("/refuse")
    await client.get("/some/raw/path/with-an-id")
    text = await (await client.get("/metrics")).text()
    assert 'route="/refuse"' in text and 'route="unmatched"' in text
    assert "with-an-id" not in text
    assert "pulse_build_info" in text and "process_cpu_seconds_total" in text


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: header ignored
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # nginx on loopback
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # client-forged left part ignored
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", "198.51.100.7"),  # chain of trusted proxies
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", " , 198.51.100.7 ,", "198.51.100.7"),  # empty hops are skipped
        ("127.0.0.1", "10.1.2.3, 10.2.3.4", "10.1.2.3"),  # only proxies: the first one
        ("127.0.0.1", "010.1.2.3", "127.0.0.1"),  # leading zeros are no address
        ("127.0.0.1", "2001:db8::7", "2001:db8::7"),
        ("127.0.0.1", "198.51.100.7, 127.0.0.2", "127.0.0.2"),  # 127.0.0.2 is not in 127.0.0.1/32
    ],
)
def test_client_address(peer: str, xff: str, expected: str) -> None:
    request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": xff} if xff else {})
    request = request.clone(remote=peer)
    assert client_address(request, TRUSTED) == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.ip_addresses().map(str),
    st.text(alphabet="0123456789abcdefABCDEF.:%x ", max_size=45),
))
def test_parse_ip_agrees_with_ipaddress(text: str) -> None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        assert parse_ip(text) is None
    else:
        assert parse_ip(text) == (ip.version, int(ip))
