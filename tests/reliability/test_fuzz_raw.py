"""Raw-byte fuzzing beyond the OpenAPI document, against real processes of both services:
request lines with odd methods, targets and versions, header names and values of any
bytes, bodies in any Content-Encoding or chunking, over-long lines. Each request gets an
HTTP answer below 500 on a fresh connection (never a 5xx, never a close without an
answer, since every request sent is complete), the process stays up and logs no
traceback, and nothing of a bearer token reaches the log.

Bounded and reproducible: hypothesis with ``derandomize`` and a fixed number of examples.
"""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN
from tests.reliability.procs import Cluster, Kind, ServiceProcess
from tests.reliability.raw_http import raw_exchange

EXAMPLES = 250
HIT = b'{"site": "default", "kind": "pageview", "path": "/fuzz", "visitor": "v-fuzz"}'

METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"HEAD", b"PATCH", b"TRACE", b"CONNECT",
           b"PROPFIND", b"BREW", b"get", b"PRI", b"M-SEARCH", b"QUERY"]
TARGETS = {
    "counter": [b"/v1/hit", b"/v1/hit.gif?site=default&path=/", b"/v1/stats?site=default",
                b"/v1/stats/series?site=default&unit=hour&from=0001-01-01", b"/v1/pages?site=default&path=/",
                b"/v1/admin/sites/default/baseline", b"/widget.js", b"/healthz", b"/metrics", b"/openapi.json"],
    "session": [b"/v1/sessions", b"/v1/sessions/" + b"a" * 43, b"/v1/sessions/" + b"a" * 43 + b"/activity",
                b"/v1/sessions/x/events", b"/session.js", b"/healthz", b"/metrics", b"/openapi.json"],
}
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"HTTP/2.0", b"HTTP/1.2", b"HTTP/9.9", b"http/1.1", b"HTTP/1.1 x",
            b"HTTP/1.01", b""]
HEADER_NAMES = [b"Authorization", b"Content-Type", b"Content-Encoding", b"Accept-Encoding", b"Origin", b"Referer",
                b"X-Forwarded-For", b"User-Agent", b"Cookie", b"Expect", b"Upgrade", b"Connection", b"Range",
                b"If-None-Match", b"Last-Event-ID", b"Accept", b"Host"]
ODD_VALUES = [b"Bearer \xff\xfe", b"Bearer " + ADMIN_TOKEN.encode() + b"\xc3", b"Bearer \xc3\xa9\xe2\x82\xac",
              b"bearer ", b"Basic \x00\x01", b"gzip", b"deflate", b"br", b"zstd", b"identity", b"gzip, gzip",
              b"x-bogus", b"100-continue", b"websocket", b"h2c", b"Upgrade", b"close", b"keep-alive, Upgrade",
              b"application/json; charset=\xff", b"text/plain;charset=UTF-8", b"multipart/form-data; boundary=",
              b"bytes=0-1,0-1,0-1", b"1.2.3.4, \xff, ::1", b"null", b"\xe2\x80\xae", b"\x7f", b"\t"]

FRAMING_HEADERS = [
    (b"Content-Type", [b"application/json", b"text/plain;charset=UTF-8", b"application/json; charset=\xff"]),
    (b"Content-Encoding", [b"gzip", b"deflate", b"br", b"zstd", b"identity", b"gzip, deflate", b"x-bogus"]),
    (b"Authorization", [b"Bearer \xff\xfe", b"Bearer " + SERVICE_TOKEN.encode() + b"\xff", b"Bearer \xc3\xa9"]),
]


def no_line_breaks(data: bytes) -> bytes:
    """Random bytes stay inside one line: every request sent is complete."""
    return data.replace(b"\r", b"").replace(b"\n", b"")


line_bytes = st.binary(max_size=40).map(no_line_breaks)
long_line = st.integers(8_000, 40_000).map(lambda n: b"L" * n)


def body_and_framing() -> st.SearchStrategy[tuple[bytes, list[tuple[bytes, bytes]]]]:
    gz = gzip.compress(HIT)
    bomb = gzip.compress(b"\x00" * 4_000_000)  # 4 MB of zeros in ~4 KB
    plain = st.sampled_from([b"", HIT, b"{}", b"[" * 5000, b"\xff\xfe\xfd", gz, zlib.compress(HIT), bomb])
    framed = st.tuples(plain, st.sampled_from(["length", "chunked", "bad-chunked", "length+chunked", "none"]))

    def frame(item: tuple[bytes, str]) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        body, how = item
        if how == "length":
            return body, [(b"Content-Length", str(len(body)).encode())]
        if how == "chunked":
            return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n", [(b"Transfer-Encoding", b"chunked")]
        if how == "bad-chunked":
            return b"zz\r\n" + body + b"\r\n0\r\n\r\n", [(b"Transfer-Encoding", b"chunked")]
        if how == "length+chunked":
            return (f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n",
                    [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")])
        return b"", []

    return framed.map(frame)


@st.composite
def raw_requests(draw: st.DrawFn, kind: str) -> bytes:
    method = draw(st.one_of(st.sampled_from(METHODS), line_bytes))
    target = draw(st.sampled_from(TARGETS[kind])) + draw(st.one_of(st.just(b""), line_bytes, long_line))
    version = draw(st.sampled_from(VERSIONS))
    headers = [(b"Host", b"fuzz.test")] if draw(st.booleans()) or version == b"HTTP/1.1" else []
    for name, values in FRAMING_HEADERS:  # each present half the time, so their combinations come up
        if draw(st.booleans()):
            headers.append((name, draw(st.one_of(st.sampled_from(values), line_bytes))))
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.one_of(st.sampled_from(HEADER_NAMES), line_bytes))
        value = draw(st.one_of(st.sampled_from(ODD_VALUES), line_bytes, long_line))
        headers.append((name, value))
    body, framing = draw(body_and_framing())
    lines = [method + b" " + target + b" " + version] + [n + b": " + v for n, v in headers + framing]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def bad_answer(port: int, payload: bytes) -> str | None:
    """What is wrong with the server's answer to ``payload`` (no answer, a 5xx), or None."""
    try:
        status, head = raw_exchange(port, payload)
    except AssertionError as exc:
        return str(exc)
    if status >= 500:
        return f"{head[:200]!r}"
    if status >= 400 and b"application/json" not in head.lower():
        return f"a {status} that is not a JSON error: {head[:200]!r}"
    return None


def fuzz(proc: ServiceProcess) -> None:
    problems: list[str] = []

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(payload=raw_requests(proc.kind))
    def one(payload: bytes) -> None:
        problem = bad_answer(proc.port, payload)
        if problem:
            problems.append(f"{payload[:160]!r}: {problem}")

    one()
    assert not problems, f"{len(problems)} bad answers:\n" + "\n".join(problems[:20])
    status, _ = raw_exchange(proc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and proc.running()
    log = proc.log()
    for sign in ("Traceback", "Unhandled exception", " ERROR ", ADMIN_TOKEN, SERVICE_TOKEN, "\\xff\\xfe"):
        assert sign not in log, f"{sign!r} in the log:\n{log[-3000:]}"


def test_raw_bytes_never_give_a_5xx_or_a_silent_close_on_the_counter(shared: Cluster) -> None:
    fuzz(shared.service("counter"))


def test_raw_bytes_never_give_a_5xx_or_a_silent_close_on_the_session_service(shared: Cluster) -> None:
    fuzz(shared.service("session"))


@pytest.mark.parametrize("payload", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n",
])
def test_what_aiohttp_cannot_parse_is_a_json_4xx(shared: Cluster, payload: bytes) -> None:
    proc = shared.service("counter")
    status, head = raw_exchange(proc.port, payload)
    assert 400 <= status < 500 and b"content-type: application/json" in head.lower(), head[:300]


def test_undecodable_bearer_tokens_are_401_and_not_logged(shared: Cluster) -> None:
    counter, session = shared.service("counter"), shared.service("session")
    for proc, line in ((counter, b"PUT /v1/admin/sites/default/baseline"), (session, b"POST /v1/sessions")):
        for token in (b"\xff\xfe", b"\xc3\xa9t\xc3\xa9", b"caf\xe9", b"\x00abc"):
            payload = (line + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                       + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            status, head = raw_exchange(proc.port, payload)
            assert status in (400, 401), head
            assert b"application/json" in head or status == 400, head
        assert "Traceback" not in proc.log() and "\\xff" not in proc.log(), proc.log()[-3000:]


def test_series_dates_outside_the_calendar_are_400(shared: Cluster) -> None:
    counter = shared.service("counter")
    for query in (b"unit=hour&from=0001-01-01&to=0001-01-01T05:00:00", b"unit=day&from=9999-12-31",
                  b"unit=hour&from=0001-01-01T00:00:00%2B05:00", b"unit=month&to=0001-01-01"):
        status, head = raw_exchange(counter.port, b"GET /v1/stats/series?site=default&" + query
                                    + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 400, head
        assert b"application/json" in head


ENCODINGS = [b"gzip", b"deflate", b"br", b"zstd", b"identity", b"gzip, deflate", b"x-bogus", b"GZIP", b""]
BODIES = [HIT, b"{}", b"\xff\xfe", gzip.compress(HIT), zlib.compress(HIT), gzip.compress(b"\x00" * 4_000_000),
          gzip.compress(HIT)[:-4]]
BODY_ROUTES = {
    "counter": [b"POST /v1/hit", b"PUT /v1/admin/sites/default/baseline"],
    "session": [b"POST /v1/sessions", b"POST /v1/sessions/" + b"a" * 43 + b"/activity"],
}


def test_every_content_encoding_of_every_body_is_answered_below_500(shared: Cluster) -> None:
    """The whole grid (small enough to send every cell): each body route, each encoding
    (known, unsupported, bogus), each body (plain, compressed, truncated, a bomb)."""
    problems = []
    kinds: list[tuple[Kind, str]] = [("counter", ADMIN_TOKEN), ("session", SERVICE_TOKEN)]
    for kind, token in kinds:
        proc = shared.service(kind)
        for route in BODY_ROUTES[kind]:
            for encoding in ENCODINGS:
                for body in BODIES:
                    payload = (route + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Authorization: Bearer " + token.encode() + b"\r\nContent-Encoding: " + encoding
                               + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                    problem = bad_answer(proc.port, payload)
                    if problem:
                        problems.append(f"{kind} {route!r} {encoding!r} {body[:20]!r}: {problem}")
        log = proc.log()
        assert "Traceback" not in log and "Unhandled exception" not in log, log[-3000:]
    assert not problems, "\n".join(problems)
