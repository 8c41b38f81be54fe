"""Hostile and broken requests against real service processes: over-long bodies, paths,
headers and query strings, invalid UTF-8, JSON nesting bombs, wrong content types and
malformed HTTP. Each gets a clear 4xx (never a 5xx, never a hang), and the service is
unharmed: it still answers /healthz and a valid call afterwards, and logged no crash."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from tests.conftest import SERVICE_TOKEN
from tests.reliability.load import BROWSER_UA
from tests.reliability.probe import request
from tests.reliability.procs import Cluster, ServiceProcess

JSON = "application/json"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = JSON
    headers: tuple[tuple[str, str], ...] = ()
    expect: tuple[int, ...] = (400,)
    json_error: bool = True  # the answer is {"error": {"code", "message"}}


def hit(extra: str = "", **fields: str) -> bytes:
    body = {"site": "default", "kind": "pageview", "path": "/x", "visitor": "v-bad", **fields}
    inner = ", ".join(f'"{k}": "{v}"' for k, v in body.items())
    return ("{" + inner + extra + "}").encode()


COUNTER_CASES = [
    Case("body over the cap", "POST", "/v1/hit", hit(referrer="r" * 9000), expect=(413,)),
    Case("body far over the cap", "POST", "/v1/hit", b"{" + b" " * 2_000_000 + b"}", expect=(413,)),
    Case("over-long path field", "POST", "/v1/hit", hit(path="/" + "p" * 2000)),
    Case("over-long visitor", "POST", "/v1/hit", hit(visitor="v" * 500)),
    Case("over-long event id", "POST", "/v1/hit", hit(id="e" * 500)),
    Case("over-long referrer", "POST", "/v1/hit", hit(referrer="r" * 3000)),
    Case("invalid UTF-8", "POST", "/v1/hit", b'{"site": "default", "path": "/\xff\xfe", "visitor": "v"}'),
    Case("lone surrogate escape", "POST", "/v1/hit", b'{"site": "default", "path": "/\\ud800", "visitor": "v"}',
         expect=(204, 400)),
    Case("array nesting bomb", "POST", "/v1/hit", b"[" * 8000),
    Case("object nesting bomb", "POST", "/v1/hit", b'{"a":' * 1300 + b"1" + b"}" * 1300),
    Case("bomb in an unknown field", "POST", "/v1/hit", hit(', "x": ' + "[" * 3000 + "]" * 3000), expect=(204, 400)),
    Case("not JSON", "POST", "/v1/hit", b"site=default&path=/x"),
    Case("JSON but not an object", "POST", "/v1/hit", b'"default"'),
    Case("wrong types", "POST", "/v1/hit", b'{"site": 1, "kind": ["pageview"], "member": "yes"}'),
    Case("unknown kind", "POST", "/v1/hit", hit(kind="purchase")),
    Case("empty body", "POST", "/v1/hit", b""),
    Case("XML content type", "POST", "/v1/hit", b"<hit site='default'/>", content_type="application/xml",
         expect=(415,)),
    Case("form content type", "POST", "/v1/hit", b"site=default", content_type="application/x-www-form-urlencoded",
         expect=(415,)),
    Case("multipart content type", "POST", "/v1/hit", b"--x--", content_type="multipart/form-data; boundary=x",
         expect=(415,)),
    Case("unknown site", "GET", "/v1/stats?site=" + "s" * 5000, expect=(400, 404)),
    Case("invalid UTF-8 in the query", "GET", "/v1/stats?site=%ff%fe", expect=(400, 404)),
    Case("over-long pixel path", "GET", "/v1/hit.gif?site=default&path=/" + "p" * 5000, expect=(200, 400),
         json_error=False),
    Case("over-long query string", "GET", "/v1/stats?site=default&pad=" + "q" * 7000, expect=(200, 400, 414),
         json_error=False),
    Case("stats series nonsense", "GET", "/v1/stats/series?site=default&unit=year&from=x&to=y"),
    Case("series range too wide", "GET", "/v1/stats/series?site=default&unit=hour&from=1900-01-01&to=2100-01-01"),
    Case("over-long URL path", "GET", "/v1/" + "x" * 4000, expect=(404,)),
    Case("baseline without token", "PUT", "/v1/admin/sites/default/baseline", b'{"total": 5}', expect=(401,)),
    Case("baseline bomb", "PUT", "/v1/admin/sites/default/baseline", b"[" * 8000, expect=(400, 401)),
]

SESSION_CASES = [
    Case("body over the cap", "POST", "/v1/sessions", b'{"subject": "' + b"s" * 5000 + b'"}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),), expect=(413,)),
    Case("over-long subject", "POST", "/v1/sessions", b'{"subject": "' + b"s" * 300 + b'"}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("invalid UTF-8", "POST", "/v1/sessions", b'{"subject": "\xff"}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("lone surrogate", "POST", "/v1/sessions", b'{"subject": "\\udc00"}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("nesting bomb", "POST", "/v1/sessions", b"[" * 4000, headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("negative timing", "POST", "/v1/sessions", b'{"idle_timeout": -5}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("huge timing", "POST", "/v1/sessions", b'{"idle_timeout": 1e300}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("unknown field", "POST", "/v1/sessions", b'{"admin": true}',
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),)),
    Case("XML content type", "POST", "/v1/sessions", b"<s/>", content_type="application/xml",
         headers=(("Authorization", f"Bearer {SERVICE_TOKEN}"),), expect=(415,)),
    Case("over-long id", "GET", "/v1/sessions/" + "a" * 5000, expect=(404,)),
    Case("activity body over the cap", "POST", "/v1/sessions/" + "a" * 43 + "/activity", b"x" * 10_000,
         expect=(404, 413)),
]


async def check_case(proc: ServiceProcess, case: Case) -> str | None:
    """None if the case was answered as expected, else what went wrong."""
    headers = {"User-Agent": BROWSER_UA, **dict(case.headers)}
    if case.content_type and case.body is not None:
        headers["Content-Type"] = case.content_type
    try:
        status, answer_headers, body = await request(case.method, proc.url + case.path, data=case.body,
                                                     headers=headers, seconds=5)
    except (OSError, TimeoutError) as exc:  # aiohttp's errors are OSErrors
        return f"{case.name}: no answer ({type(exc).__name__})"
    if status not in case.expect:
        return f"{case.name}: {status} (expected {case.expect}) {body[:200]!r}"
    is_json_error = answer_headers.get("Content-Type", "").startswith(JSON) and b'"error"' in body
    if case.json_error and status >= 400 and not is_json_error:
        return f"{case.name}: {status} is not a JSON error: {body[:200]!r}"
    return None


async def raw_status(port: int, payload: bytes) -> int:
    """Send bytes that are not a well-formed HTTP request; the status the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    match = re.match(rb"HTTP/1\.[01] (\d{3})", line)
    assert match, f"not an HTTP answer: {line!r}"
    return int(match.group(1))


MALFORMED = [
    ("over-long header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"h" * 20_000 + b"\r\n\r\n"),
    ("too many headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-H: 1\r\n" * 5000 + b"\r\n"),
    ("over-long request line", b"GET /v1/stats?site=" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("NUL in a header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\x00agent\r\n\r\n"),
    ("invalid UTF-8 in the path", b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad chunked body", b"POST /v1/hit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    ("conflicting lengths", b"POST /v1/hit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}"),
    ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n"),
]


async def assert_unharmed(proc: ServiceProcess, valid: tuple[str, str, bytes | None, dict[str, str]],
                          ok: int) -> None:
    status, _, _ = await request("GET", f"{proc.url}/healthz")
    assert status == 200
    method, path, body, headers = valid
    status, _, raw = await request(method, proc.url + path, data=body, headers=headers)
    assert status == ok, raw
    assert proc.running()
    log = proc.log()
    assert "Traceback" not in log and "Unhandled exception" not in log, log[-4000:]


async def run_all(proc: ServiceProcess, cases: list[Case]) -> list[str]:
    problems = [p for p in [await check_case(proc, c) for c in cases] if p]
    for name, payload in MALFORMED:
        try:
            status = await raw_status(proc.port, payload)
        except (OSError, TimeoutError, AssertionError) as exc:
            problems.append(f"malformed {name}: {exc}")
            continue
        if not 400 <= status < 500:
            problems.append(f"malformed {name}: {status}")
    return problems


async def test_counter_refuses_bad_input_and_stays_healthy(shared: Cluster) -> None:
    counter = shared.service("counter")
    problems = await run_all(counter, COUNTER_CASES)
    assert not problems, "\n".join(problems)
    valid = ("POST", "/v1/hit", hit(id="after-abuse"), {"Content-Type": JSON, "User-Agent": BROWSER_UA})
    await assert_unharmed(counter, valid, 204)
    # sendBeacon sends text/plain: accepted as JSON
    status, _, _ = await request("POST", f"{counter.url}/v1/hit", data=hit(id="beacon"),
                                 headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER_UA})
    assert status == 204


async def test_session_refuses_bad_input_and_stays_healthy(shared: Cluster) -> None:
    session = shared.service("session")
    problems = await run_all(session, SESSION_CASES)
    assert not problems, "\n".join(problems)
    valid = ("POST", "/v1/sessions", b"{}", {"Content-Type": JSON, "Authorization": f"Bearer {SERVICE_TOKEN}"})
    await assert_unharmed(session, valid, 201)
