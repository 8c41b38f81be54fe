"""Origins as browsers send them, and URLs with their credentials masked.

A configured origin is compared with the ``Origin`` header byte for byte, and browsers
send the serialised form: lower-case scheme and host, no default port, no path. So a
configured ``https://Portal.example:443/`` must become ``https://portal.example``, or it
never matches.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
ANY_ORIGIN = "*"


def normalise_origin(value: str) -> str:
    """The serialised origin of ``value``; ``ValueError`` saying why when it is none."""
    if value == ANY_ORIGIN:
        return value
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an origin ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{value!r} is not an origin: the scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"{value!r} is not an origin: it has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r} is not an origin: it holds credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{value!r} is not an origin: only scheme, host and port (no path or query)")
    host = parts.hostname  # lower-cased by urlsplit, without the brackets of an IPv6 literal
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


_QUERY_SECRET = re.compile(r"(?i)([?&]password=)[^&]*")


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:***@host:6379/0``), for
    reprs, logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    masked = url
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        # a lone user-info part may be a password too (``redis://s3cret@host``)
        netloc = f"{user}:***@{hostport}" if has_password else f"***@{hostport}"
        masked = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return _QUERY_SECRET.sub(r"\1***", masked)
