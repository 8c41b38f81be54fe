"""The country of a client address from ``iptocc``'s offline database (compiled into
the wheel: no download, no file to keep current at run time). The address is only
looked up, never stored; private and unknown addresses are ``(unknown)``."""

from __future__ import annotations

import iptocc

UNKNOWN = "(unknown)"


def country_of(address: str) -> str:
    if not address:
        return UNKNOWN
    try:
        code = iptocc.country_code(address)
    except ValueError:
        return UNKNOWN
    return code if isinstance(code, str) and code else UNKNOWN
