"""Web helpers both services share: JSON in and out, the error middleware, tokens,
client addresses, CORS and a privacy-preserving access log."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec
from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.helpers import parse_content_type
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from portal_pulse.core.errors import ApiError, bad_request, unauthorized, unavailable
from portal_pulse.core.redis_conn import STORAGE_ERRORS
from portal_pulse.core.secret import Secret

log = logging.getLogger(__name__)
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encoder = msgspec.json.Encoder()
JSON_TYPE = "application/json"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type=JSON_TYPE, headers=headers)


def error_response(error: ApiError) -> web.Response:
    headers = {"Cache-Control": "no-store", **error.headers}
    return json_response(error.body(), status=error.status, headers=headers)


#: The route label of requests no route answers (unknown paths and methods).
UNMATCHED = "unmatched"


def route_name(request: web.Request) -> str:
    """The route template (``/v1/sessions/{id}``), never the raw path: paths hold ids.
    The edge's ``*`` routes (404 and 405, ``core/edge.py``) are ``unmatched``."""
    try:
        info = request.match_info
    except AssertionError:  # a message aiohttp could not parse never reached the router
        return UNMATCHED
    route = info.route if info is not None else None
    resource = route.resource if route is not None else None
    if resource is None or route.method == hdrs.METH_ANY or getattr(info, "http_exception", None) is not None:
        return UNMATCHED
    return resource.canonical


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 408: "timeout", 411: "length_required",
    413: "body_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    422: "unprocessable", 429: "too_many_requests", 431: "headers_too_large",
}


def failure_response(request: web.Request, exc: Exception) -> web.Response:
    """The JSON error answer for a handler's exception (re-raises a non-error HTTPException,
    e.g. a redirect, which aiohttp answers itself)."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code = _HTTP_CODES.get(exc.status, "error")
        message = exc.reason if exc.status != 413 else "request body too large"
        error = ApiError(exc.status, code, message, {
            k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")
        })
        return error_response(error)
    if isinstance(exc, STORAGE_ERRORS):
        log.warning("storage unavailable on %s %s: %s", request.method, route_name(request), type(exc).__name__)
        return error_response(unavailable())
    log.exception("unexpected failure on %s %s", request.method, route_name(request), exc_info=exc)
    return error_response(ApiError(500, "internal", "internal error"))


async def read_body(request: web.Request, max_bytes: int, timeout_seconds: float) -> bytes:
    """The body, refused with 413 beyond ``max_bytes`` whatever Content-Length claims, and
    with 408 unless all of it arrives within ``timeout_seconds`` (a slow body holds a
    connection like slow headers do)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "body_too_large", f"request body is limited to {max_bytes} bytes")
    content = request.content
    body = bytearray()
    try:
        if content.is_eof():
            # All of it has arrived (a small body comes in the packet of its headers, and
            # the parser has fed it before the handler runs): nothing to wait for, so no
            # timer to arm and cancel, which cost ~9 µs a hit. The same bytes and errors.
            while len(body) <= max_bytes:
                chunk = content.read_nowait(max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
        else:
            async with asyncio.timeout(timeout_seconds):
                while len(body) <= max_bytes:
                    chunk = await content.read(max_bytes + 1 - len(body))
                    if not chunk:
                        break
                    body += chunk
    except TimeoutError as exc:
        raise ApiError(408, "timeout", f"the request body did not arrive within {timeout_seconds:g} s") from exc
    except (RequestPayloadError, HttpProcessingError) as exc:  # bad chunking, undecodable gzip/deflate...
        raise bad_request("request body could not be decoded (framing or Content-Encoding)", "invalid_body") from exc
    if len(body) > max_bytes:
        raise ApiError(413, "body_too_large", f"request body is limited to {max_bytes} bytes")
    return bytes(body)


def decode_json(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode and validate a JSON body with msgspec; errors become 400 with the reason."""
    if not body.strip():
        raise bad_request("request body is empty; a JSON object is expected", "invalid_json")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise bad_request(str(exc), "invalid_body") from exc
    except msgspec.DecodeError as exc:  # invalid UTF-8 too ("Invalid UTF-8 encoded string")
        raise bad_request(f"malformed JSON: {exc}", "invalid_json") from exc
    except RecursionError as exc:
        raise bad_request("JSON nested too deeply", "invalid_json") from exc


def require_json_type(request: web.Request, allowed: Iterable[str] = (JSON_TYPE,)) -> None:
    if not request.can_read_body:
        return
    # What ``request.content_type`` answers, from aiohttp's own memoised parser, without
    # the copy of the parameters that property makes for every request (~1 µs a hit).
    raw = request.headers.get(hdrs.CONTENT_TYPE)
    ctype = "application/octet-stream" if raw is None else parse_content_type(raw)[0]
    if ctype not in allowed:
        raise ApiError(415, "unsupported_media_type", f"expected one of: {', '.join(allowed)}")


def bearer_token(request: web.Request) -> str | None:
    """The bearer token, or None when there is none or it is not printable ASCII (RFC 6750
    tokens are; a token of other bytes can match no configured token)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not (token.isascii() and token.isprintable()):
        return None
    return token


def require_token(request: web.Request, expected: Secret | None) -> None:
    """Refuse with 401 unless the bearer token matches (compared in constant time).

    With no token configured the endpoint is closed to everyone: fail safe.
    """
    token = bearer_token(request)
    if expected is None or token is None or not expected.matches(token):
        raise unauthorized()


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> tuple[int, int] | None:
    """``(version, address as an integer)``, or None when ``text`` is no IP address.

    ``socket.inet_pton`` is strict (no leading zeros, no short forms, no spaces), like
    ``ipaddress``, and about nine times faster: it runs for every hop of every hit's
    X-Forwarded-For. A scoped IPv6 address (``fe80::1%eth0``) takes the slow path."""
    try:
        if ":" in text:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        if "%" not in text:
            return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return ip.version, int(ip)


class TrustedNetworks:
    """Trusted proxy networks, with the decision per address remembered (the addresses
    that reach a service are few: its proxies and load balancers). At most ``memo_size``
    decisions are kept, so addresses sent by clients cannot grow it without bound."""

    def __init__(self, networks: Iterable[IPNetwork], memo_size: int = 4096) -> None:
        self.networks = tuple(networks)
        #: (network, mask) as integers, per IP version: an address is tested against its own.
        self._ranges: dict[int, tuple[tuple[int, int], ...]] = {
            version: tuple((int(net.network_address), int(net.netmask)) for net in self.networks
                           if net.version == version)
            for version in (4, 6)
        }
        self._memo: dict[str, bool | None] = {}
        self._memo_size = memo_size

    def __bool__(self) -> bool:
        return bool(self.networks)

    def classify(self, address: str) -> bool | None:
        """True for a trusted address, False for another address, None for no address."""
        memo = self._memo
        if address in memo:  # ``in`` and a look-up: cheaper than a missed ``memo[address]``'s KeyError
            return memo[address]
        decision: bool | None
        parsed = parse_ip(address)
        if parsed is None:
            decision = None
        else:
            version, value = parsed
            decision = False
            for net, mask in self._ranges[version]:
                if value & mask == net:
                    decision = True
                    break
        if len(memo) < self._memo_size:
            memo[address] = decision
        return decision


def client_address(request: web.Request, trusted: TrustedNetworks) -> str:
    """The client's address: from X-Forwarded-For only behind a trusted proxy.

    Walks the X-Forwarded-For chain from the right, skipping trusted proxies, so a client
    cannot forge its address by sending its own header through nginx.
    """
    peer = request.remote or ""
    if not trusted or trusted.classify(peer) is not True:
        return peer
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded:
        return peer
    if "," not in forwarded:  # one hop (one proxy in front): the walk below, unrolled
        hop = forwarded.strip()
        decision = trusted.classify(hop) if hop else None
        return peer if decision is None else hop  # a trusted lone hop is the first one too
    chain = [part.strip() for part in forwarded.split(",")]
    for hop in reversed(chain):
        if not hop:
            continue
        decision = trusted.classify(hop)
        if decision is not True:
            return hop if decision is False else peer
    first = next((hop for hop in chain if hop), "")
    return first if first and parse_ip(first) is not None else peer


def cors_headers(origin: str | None, allowed: Iterable[str], methods: str) -> dict[str, str]:
    """CORS headers for ``origin`` if it is one of ``allowed`` (``*`` allows any)."""
    if not origin:
        return {}
    allowed = tuple(allowed)
    if origin not in allowed and "*" not in allowed:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Content-Type, Authorization, Last-Event-ID",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


class MalformedRequestLogFilter(logging.Filter):
    """aiohttp logs a request it cannot parse as ``Error handling request from <peer IP>``
    at ERROR with the parser's exception, which quotes the offending raw bytes (a
    User-Agent, an X-Forwarded-For...). Keep the fact and the kind of error; drop the
    address and the raw bytes, which are personal data and attacker-controlled noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Unhandled exception" and record.exc_info and _is_bad_payload(record.exc_info[1]):
            # a body nobody read (a 404, a refused request) failed to decode while aiohttp
            # drained it after the answer was sent: the client's fault, already answered
            record.msg, record.args = "discarded an undecodable request body: %s", (type(record.exc_info[1]).__name__,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        if record.msg == "Error handling request from %s":
            exc = record.exc_info[1] if record.exc_info else None
            record.msg = "refused a request it could not handle: %s"
            record.args = (type(exc).__name__ if exc is not None else "unknown",)
            record.exc_info = None
            record.exc_text = None
            if isinstance(exc, HttpProcessingError):  # malformed input, not our failure
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _is_bad_payload(exc: BaseException | None) -> bool:
    return isinstance(exc, RequestPayloadError | HttpProcessingError)


def install_log_redaction() -> None:
    """Attach ``MalformedRequestLogFilter`` to aiohttp's server logger (idempotent)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLogFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestLogFilter())


class RouteAccessLogger(AbstractAccessLogger):
    """Access log lines with the route template instead of the path, and no client
    address or User-Agent: paths carry session ids, and addresses are personal data."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        name = route_name(request) if isinstance(request, web.Request) else UNMATCHED
        self.logger.info("%s %s %s %.1fms", request.method, name, response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
