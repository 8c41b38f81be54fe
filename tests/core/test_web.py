"""The shared web helpers, through a real aiohttp app."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from aiohttp.web_protocol import RequestPayloadError
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError

from portal_pulse.core.edge import install_edge
from portal_pulse.core.errors import ApiError, StorageUnavailable, bad_request, not_found, unavailable
from portal_pulse.core.metrics import ServiceMetrics
from portal_pulse.core.secret import Secret
from portal_pulse.core.web import (
    IPNetwork,
    MalformedRequestLogFilter,
    RouteAccessLogger,
    TrustedNetworks,
    client_address,
    cors_headers,
    decode_json,
    error_response,
    install_log_redaction,
    parse_ip,
    read_body,
    require_json_type,
    require_token,
)
from tests.conftest import ClientFactory


def trusted() -> TrustedNetworks:
    return TrustedNetworks((ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")))


class Body(msgspec.Struct):
    name: str
    count: int = 0


HTTP_ERRORS: dict[str, Callable[[], web.HTTPException]] = {
    "302": lambda: web.HTTPFound("/elsewhere"),
    "400": lambda: web.HTTPBadRequest(reason="Bad Thing"),
    "401": lambda: web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Bearer realm="pulse"', "X-Internal": "1"}),
    "412": lambda: web.HTTPPreconditionFailed(),
    "413": lambda: web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20),
    "429": lambda: web.HTTPTooManyRequests(headers={"Retry-After": "7", "X-Internal": "1"}),
}


def _app() -> web.Application:
    metrics = ServiceMetrics("test")
    app = web.Application()
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

    async def http_error(request: web.Request) -> web.Response:
        raise HTTP_ERRORS[request.match_info["status"]]()

    app.router.add_post("/echo", echo)
    app.router.add_get("/secret", secret)
    app.router.add_get("/storage", storage)
    app.router.add_get("/crash", crash)
    app.router.add_get("/refuse", refuse)
    app.router.add_get("/http/{status}", http_error)
    app.router.add_get("/metrics", metrics.handle_metrics)
    install_edge(app, metrics, lambda: ["https://ok.example"])
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


@pytest.mark.parametrize(("status", "code", "message", "kept"), [
    ("400", "bad_request", "Bad Thing", {}),
    ("401", "unauthorized", "Unauthorized", {"WWW-Authenticate": 'Bearer realm="pulse"'}),
    ("412", "error", "Precondition Failed", {}),  # a status without a code of its own
    ("413", "body_too_large", "request body too large", {}),
    ("429", "too_many_requests", "Too Many Requests", {"Retry-After": "7"}),
])
async def test_aiohttp_errors_become_json_keeping_only_their_protocol_headers(
    make_client: ClientFactory, status: str, code: str, message: str, kept: dict[str, str]
) -> None:
    client = await make_client(_app())
    response = await client.get(f"/http/{status}")
    assert response.status == int(status)
    assert await response.json() == {"error": {"code": code, "message": message}}
    assert {name: response.headers[name] for name in kept} == kept
    assert "X-Internal" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


async def test_failures_are_logged_by_route_with_the_traceback_of_a_bug(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(_app())
    with caplog.at_level(logging.WARNING, "portal_pulse.core.web"):
        crash = await client.get("/crash")
        storage = await client.get("/storage")
    assert await crash.json() == {"error": {"code": "internal", "message": "internal error"}}
    assert storage.status == 503
    records = [r for r in caplog.records if r.name == "portal_pulse.core.web"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.ERROR, "unexpected failure on GET /crash"),
        (logging.WARNING, "storage unavailable on GET /storage: ConnectionError"),
    ]
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], RuntimeError)
    assert records[1].exc_info is None  # an outage is no bug: no traceback


async def test_a_redirect_stays_a_redirect(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    response = await client.get("/http/302", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/elsewhere")


async def test_a_wrong_method_names_the_allowed_ones(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    response = await client.delete("/echo")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert await response.json() == {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}


@pytest.mark.parametrize(("error", "status", "code", "message", "headers"), [
    (bad_request("no"), 400, "bad_request", "no", {}),
    (bad_request("no", "bad_site"), 400, "bad_site", "no", {}),
    (not_found("gone"), 404, "not_found", "gone", {}),
    (not_found("gone", "unknown_site"), 404, "unknown_site", "gone", {}),
    (unavailable(), 503, "unavailable", "storage is not answering; retry shortly", {"Retry-After": "1"}),
    (unavailable("later", retry_after=7), 503, "unavailable", "later", {"Retry-After": "7"}),
    (StorageUnavailable(), 503, "unavailable", "storage is not answering; retry shortly", {"Retry-After": "1"}),
    (StorageUnavailable("slow"), 503, "unavailable", "slow", {"Retry-After": "1"}),
])
async def test_each_error_s_answer(error: ApiError, status: int, code: str, message: str,
                                   headers: dict[str, str]) -> None:
    response = error_response(error)
    assert response.status == status
    assert isinstance(response.body, bytes)
    assert msgspec.json.decode(response.body) == {"error": {"code": code, "message": message}}
    assert {name: response.headers[name] for name in headers} == headers
    assert response.headers["Cache-Control"] == "no-store"
    assert str(error) == message


async def test_tokens(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    refused = await client.get("/secret")
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="portal-pulse"'
    assert refused.headers["Cache-Control"] == "no-store"
    assert await refused.json() == {"error": {"code": "unauthorized", "message": "a valid bearer token is required"}}
    assert (await client.get("/secret", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/secret", headers={"Authorization": "Basic right"})).status == 401
    response = await client.get("/secret", headers={"Authorization": "Bearer right"})
    assert response.status == 200


@pytest.mark.parametrize(("header", "configured", "accepted"), [
    ("Bearer  right ", "right", True),  # spaces around the token are not part of it
    ("bearer right", "right", True),  # the scheme is case-insensitive
    ("Bearer r\u00efght", "r\u00efght", False),  # not ASCII: no RFC 6750 token, whatever is configured
    ("Bearer right\x7f", "right\x7f", False),  # not printable
    ("Bearer ", "right", False),
    ("right", "right", False),
])
def test_only_a_printable_ascii_bearer_token_can_match(header: str, configured: str, accepted: bool) -> None:
    request = make_mocked_request("GET", "/", headers={"Authorization": header})
    if accepted:
        require_token(request, Secret(configured))
    else:
        with pytest.raises(ApiError) as raised:
            require_token(request, Secret(configured))
        assert raised.value.status == 401


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
    assert await response.json() == {
        "error": {"code": "origin_not_allowed", "message": "this origin is not configured"}}
    response = await client.post("/echo", data=b'{"name":"a"}', headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert cors_headers(None, ["*"], "GET") == {}
    assert cors_headers("https://any.example", ["*"], "GET")["Access-Control-Allow-Origin"] == "https://any.example"


async def test_a_preflight_answer_names_methods_headers_and_lifetime(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    response = await client.options("/echo", headers={"Origin": "https://ok.example",
                                                      "Access-Control-Request-Method": "POST"})
    assert response.status == 204
    cors = {name: value for name, value in response.headers.items()
            if name.lower().startswith("access-control-") or name.lower() == "vary"}
    assert cors == {
        "Access-Control-Allow-Origin": "https://ok.example",
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Authorization, Last-Event-ID",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


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
        ("127.0.0.1", "6.6.6.6, 198.51.100.7, ", "198.51.100.7"),  # ... and the walk goes on past them
        ("127.0.0.1", " , ", "127.0.0.1"),  # only empty hops: the peer
        ("127.0.0.1", "10.1.2.3, 10.2.3.4", "10.1.2.3"),  # only proxies: the first one
        ("127.0.0.1", "010.1.2.3", "127.0.0.1"),  # leading zeros are no address
        ("127.0.0.1", "2001:db8::7", "2001:db8::7"),
        ("127.0.0.1", "198.51.100.7, 127.0.0.2", "127.0.0.2"),  # 127.0.0.2 is not in 127.0.0.1/32
        ("127.0.0.1", " 198.51.100.7 ", "198.51.100.7"),  # one hop, spaced
        ("127.0.0.1", "10.1.2.3", "10.1.2.3"),  # one hop, a proxy: the first one
        ("127.0.0.1", " ", "127.0.0.1"),  # one empty hop
        ("127.0.0.1", "::1", "::1"),  # an IPv6 hop is tested against IPv6 networks only
        ("::1", "198.51.100.7", "::1"),  # ::1 is not trusted here
    ],
)
def test_client_address(peer: str, xff: str, expected: str) -> None:
    request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": xff} if xff else {})
    request = request.clone(remote=peer)
    assert client_address(request, trusted()) == expected  # a fresh memo: the decision is computed


def _reference_client_address(peer: str, forwarded: str | None, networks: list[IPNetwork]) -> str:
    """The walk from the right, written plainly with ``ipaddress`` (what client_address's
    memo, per-version ranges and one-hop shortcut must agree with)."""
    def classify(text: str) -> bool | None:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return None
        return any(ip in net for net in networks)

    if not networks or classify(peer) is not True or not forwarded:
        return peer
    chain = [part.strip() for part in forwarded.split(",")]
    for hop in reversed(chain):
        if hop:
            decision = classify(hop)
            if decision is not True:
                return hop if decision is False else peer
    first = next((hop for hop in chain if hop), "")
    return first if first and classify(first) is not None else peer


HOPS = st.sampled_from(["127.0.0.1", "10.1.2.3", "10.255.0.1", "11.0.0.1", "198.51.100.7", "::1", "2001:db8::7",
                        "fd00::5", "garbage", "", " ", "010.1.2.3", "fe80::1%eth0"])


@settings(max_examples=500, deadline=None)
@given(peer=HOPS, hops=st.lists(HOPS, max_size=4), spaced=st.booleans())
def test_client_address_agrees_with_the_plain_walk(peer: str, hops: list[str], spaced: bool) -> None:
    networks: list[IPNetwork] = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"),
                                 ipaddress.ip_network("fd00::/8")]
    forwarded = (", " if spaced else ",").join(hops) if hops else None
    request = make_mocked_request("GET", "/", headers={"X-Forwarded-For": forwarded} if forwarded else {})
    request = request.clone(remote=peer)
    expected = _reference_client_address(peer, forwarded, networks)
    memo = TrustedNetworks(networks)
    assert client_address(request, memo) == expected
    assert client_address(request, memo) == expected  # again, from the memo


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


# --- Logging: aiohttp's records of malformed requests redacted, access lines by route.


def _record(msg: str, args: tuple[object, ...], exc: BaseException | None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    record = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, msg, args, exc_info)
    record.exc_text = "cached traceback quoting the raw bytes"
    return record


def _filtered(record: logging.LogRecord) -> logging.LogRecord:
    assert MalformedRequestLogFilter().filter(record) is True  # redacted, never dropped
    return record


def test_a_malformed_request_is_logged_without_its_address_or_bytes() -> None:
    raw = BadHttpMessage("bad header: User-Agent: secret-browser/1.0")
    record = _filtered(_record("Error handling request from %s", ("203.0.113.5",), raw))
    assert record.getMessage() == "refused a request it could not handle: BadHttpMessage"
    assert (record.exc_info, record.exc_text) == (None, None)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")  # the client's fault


def test_our_own_failure_on_a_request_stays_an_error() -> None:
    record = _filtered(_record("Error handling request from %s", ("203.0.113.5",), RuntimeError("ours")))
    assert record.getMessage() == "refused a request it could not handle: RuntimeError"
    assert (record.exc_info, record.exc_text) == (None, None)
    assert (record.levelno, record.levelname) == (logging.ERROR, "ERROR")
    record = _filtered(_record("Error handling request from %s", ("203.0.113.5",), None))
    assert record.getMessage() == "refused a request it could not handle: unknown"


def test_an_undecodable_body_drained_after_the_answer_is_info() -> None:
    record = _filtered(_record("Unhandled exception", (), RequestPayloadError("bad gzip from 203.0.113.5")))
    assert record.getMessage() == "discarded an undecodable request body: RequestPayloadError"
    assert (record.exc_info, record.exc_text) == (None, None)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")


def test_other_records_pass_unchanged() -> None:
    bug = RuntimeError("a bug")
    for msg, args in (("Unhandled exception", ()), ("something else from %s", ("x",))):
        record = _filtered(_record(msg, args, bug))
        assert (record.msg, record.args, record.levelno) == (msg, args, logging.ERROR)
        assert record.exc_info is not None and record.exc_info[1] is bug
        assert record.exc_text == "cached traceback quoting the raw bytes"


def test_log_redaction_is_installed_once_on_aiohttp_s_server_logger() -> None:
    server_log = logging.getLogger("aiohttp.server")
    before = list(server_log.filters)
    for old in before:  # from a logger without it (another test or app may have installed it)
        server_log.removeFilter(old)
    try:
        install_log_redaction()
        install_log_redaction()
        assert [type(f) for f in server_log.filters] == [MalformedRequestLogFilter]
    finally:
        for new in list(server_log.filters):
            server_log.removeFilter(new)
        for old in before:
            server_log.addFilter(old)


async def test_access_lines_name_the_route_not_the_path(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    server = TestServer(_app())
    with caplog.at_level(logging.INFO, "test.access"):
        await server.start_server(access_log_class=RouteAccessLogger, access_log=logger)
        client: TestClient[web.Request, web.Application] = TestClient(server)
        await client.start_server()
        try:
            await (await client.get("/refuse?id=secret-id")).read()
            await (await client.get("/some/raw/path/with-an-id")).read()
        finally:
            await client.close()  # the server has written every line once it is closed
    lines = [r.getMessage() for r in caplog.records if r.name == "test.access"]
    assert [line.rsplit(" ", 1)[0] for line in lines] == ["GET /refuse 422", "GET unmatched 404"]
    assert all(re.fullmatch(r"\d+\.\dms", line.rsplit(" ", 1)[1]) for line in lines)
    access = RouteAccessLogger(logger, "")
    with caplog.at_level(logging.INFO, "test.access"):
        caplog.clear()
        access.log(make_mocked_request("POST", "/x"), web.Response(status=204), 0.01234)
    assert caplog.records[-1].getMessage().endswith(" 204 12.3ms")  # milliseconds, one decimal
    logger.setLevel(logging.WARNING)
    assert access.enabled is False
    logger.setLevel(logging.INFO)
    assert access.enabled is True
    logger.setLevel(logging.NOTSET)


@pytest.mark.parametrize(("body", "code", "message"), [
    (b"", "invalid_json", "request body is empty; a JSON object is expected"),
    (b" \n", "invalid_json", "request body is empty; a JSON object is expected"),
    (b"{", "invalid_json", "malformed JSON: Input data was truncated"),
    (b'{"name": 1}', "invalid_body", "Expected `str`, got `int` - at `$.name`"),
    (b'{"name": "\xff\xfe"}', "invalid_json", "malformed JSON: Invalid UTF-8 encoded string"),
    (b'{"name": "a", "x": ' + b"[" * 4000 + b"]" * 4000 + b"}", "invalid_json", "JSON nested too deeply"),
])
def test_a_refused_json_body_says_why(body: bytes, code: str, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        decode_json(body, msgspec.json.Decoder(Body))
    assert (raised.value.status, raised.value.code, raised.value.message) == (400, code, message)


def test_a_scoped_ipv6_address_takes_the_slow_path() -> None:
    for text in ("fe80::1%eth0", "fe80::a:b%2"):
        ip = ipaddress.ip_address(text)
        assert parse_ip(text) == (6, int(ip))
    assert parse_ip("10.0.0.1%eth0") is None


def _json_of_size(size: int) -> bytes:
    body = b'{"name": "' + b"x" * (size - 12) + b'"}'
    assert len(body) == size
    return body


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8):  # no Content-Length: the cap is enforced while reading
        yield data[start:start + 8]


@pytest.mark.parametrize("chunked", [False, True])
async def test_the_body_cap_is_exact(make_client: ClientFactory, chunked: bool) -> None:
    client = await make_client(_app())
    headers = {"Content-Type": "application/json"}
    at_cap, over = _json_of_size(64), _json_of_size(72)  # 72: a chunk ends exactly at the cap
    response = await client.post("/echo", data=_chunked(at_cap) if chunked else at_cap, headers=headers)
    assert response.status == 200, await response.text()
    response = await client.post("/echo", data=_chunked(over) if chunked else over, headers=headers)
    assert await response.json() == {"error": {"code": "body_too_large",
                                               "message": "request body is limited to 64 bytes"}}


async def test_an_undecodable_body_is_a_400_naming_the_cause(make_client: ClientFactory) -> None:
    client = await make_client(_app())
    response = await client.post("/echo", data=b"this is not gzip at all",
                                 headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert await response.json() == {"error": {"code": "invalid_body", "message":
                                               "request body could not be decoded (framing or Content-Encoding)"}}


def _reading_app(timeout_seconds: float) -> web.Application:
    async def size(request: web.Request) -> web.Response:
        return web.json_response({"size": len(await read_body(request, 64, timeout_seconds))})

    app = web.Application()
    app.router.add_post("/size", size)
    install_edge(app, ServiceMetrics("test"), lambda: [])
    return app


async def _raw_exchange(client: TestClient[web.Request, web.Application], *parts: bytes) -> tuple[int, bytes]:
    """Send ``parts`` (each in one write) on a connection of its own; the status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        return int(head.split()[1]), await reader.readexactly(length)
    finally:
        writer.close()


def _chunked_bytes(data: bytes, size: int = 8) -> bytes:
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


CHUNKED_HEAD = b"POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("split", [False, True])
async def test_a_body_is_read_whole_and_capped_however_it_arrives(make_client: ClientFactory, split: bool) -> None:
    """A body complete when the handler runs (sent in the packet of its headers) is read
    without a timer, one sent in pieces may still be arriving: the same bytes and cap."""
    client = await make_client(_reading_app(5.0))
    for data, expected in ((b"x" * 64, b'{"size": 64}'), (b"x" * 65, b"body_too_large")):
        body = _chunked_bytes(data)
        parts = (CHUNKED_HEAD, body[:5], body[5:]) if split else (CHUNKED_HEAD + body,)
        status, answer = await _raw_exchange(client, *parts)
        assert expected in answer, answer
        assert status == (200 if len(data) == 64 else 413)


async def test_a_body_that_stops_arriving_is_a_408(make_client: ClientFactory) -> None:
    client = await make_client(_reading_app(0.05))
    head = b"POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
    status, answer = await _raw_exchange(client, head + b"12345")  # 5 of 10 bytes, then nothing
    assert status == 408
    assert msgspec.json.decode(answer) == {"error": {"code": "timeout",
                                                     "message": "the request body did not arrive within 0.05 s"}}


async def _yield_a_few_turns() -> None:
    for _ in range(5):  # the reader's task wakes and blocks on its next read
        await asyncio.sleep(0)


@pytest.mark.parametrize(("pieces", "expected"), [
    ([b"a" * 30, b"b" * 34], b"a" * 30 + b"b" * 34),  # exactly the cap, in two reads
    ([b"a" * 10] * 6 + [b"b" * 4], b"a" * 60 + b"b" * 4),
    ([b"a" * 64, b"b"], None),  # a read ends at the cap and one byte follows: 413
    ([b"a" * 63, b"bb"], None),
    ([b"a" * 5], b"a" * 5),
])
async def test_a_body_still_arriving_is_read_piece_by_piece_up_to_the_cap(
    pieces: list[bytes], expected: bytes | None,
) -> None:
    loop = asyncio.get_running_loop()
    protocol = BaseProtocol(loop)
    protocol.transport = asyncio.Transport()  # a connection still open: the reader waits for more
    payload = StreamReader(protocol, 2**16, loop=loop)
    request = make_mocked_request("POST", "/", headers={"Transfer-Encoding": "chunked"}, payload=payload)
    reading = asyncio.create_task(read_body(request, 64, 30.0))
    await _yield_a_few_turns()
    for piece in pieces:
        payload.feed_data(piece)
        await _yield_a_few_turns()
    payload.feed_eof()
    if expected is None:
        with pytest.raises(ApiError) as raised:
            await reading
        assert (raised.value.status, raised.value.code) == (413, "body_too_large")
    else:
        assert await reading == expected


@pytest.mark.parametrize("content_type", [
    None, "application/json", "Application/JSON", "application/json; charset=utf-8", " application/json",
    "application/json;", "text/plain", "TEXT/PLAIN;charset=x", "json", "", "application/jsonx", "multipart/form-data",
])
async def test_the_media_type_is_the_one_aiohttp_parses(content_type: str | None) -> None:
    """require_json_type reads the parsed media type without request.content_type's
    bookkeeping: it must accept exactly what that property names."""
    allowed = ("application/json", "text/plain")
    payload = StreamReader(BaseProtocol(asyncio.get_running_loop()), 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(b"{}")
    headers = {"Content-Type": content_type} if content_type is not None else {}
    request = make_mocked_request("POST", "/", headers=headers, payload=payload)
    if request.content_type in allowed:
        require_json_type(request, allowed)
    else:
        with pytest.raises(ApiError) as raised:
            require_json_type(request, allowed)
        assert (raised.value.status, raised.value.code, str(raised.value)) == (
            415, "unsupported_media_type", "expected one of: application/json, text/plain")
    require_json_type(make_mocked_request("GET", "/", headers=headers), allowed)  # no body: nothing to check
