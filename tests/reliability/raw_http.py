"""A raw-socket HTTP client for hostile input: send exactly these bytes, read the status.

No HTTP library would send what the fuzzers send (bytes that are not UTF-8 in header
names, odd methods, bare CRs, conflicting framing), so this one writes the bytes itself
and reads only the answer's status line (skipping a ``100 Continue``).
"""

from __future__ import annotations

import contextlib
import re
import socket

STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})")


class NoAnswer(AssertionError):
    """The server closed the connection (or stayed silent) without an HTTP answer."""


def raw_exchange(port: int, payload: bytes, seconds: float = 5.0) -> tuple[int, bytes]:
    """Send ``payload`` on a new connection; the answer's status and its head."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            sock.sendall(payload)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError as exc:
                raise NoAnswer(f"no answer within {seconds}s; got {received[:120]!r}") from exc
            except OSError as exc:
                if STATUS_LINE.match(received):
                    break
                raise NoAnswer(f"{type(exc).__name__} before an answer; got {received[:120]!r}") from exc
            received += chunk
            head, sep, rest = received.partition(b"\r\n\r\n")
            if sep and STATUS_LINE.match(head) and b" 100 " in head.split(b"\r\n", 1)[0]:
                received = rest  # 100 Continue: the real answer follows
                continue
            if sep or not chunk:
                break
    match = STATUS_LINE.match(received)
    if match is None:
        raise NoAnswer(f"not an HTTP answer: {received[:120]!r}")
    return int(match.group(1)), received.partition(b"\r\n\r\n")[0]
