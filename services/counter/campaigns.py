"""The campaign of a hit from the page URL's ``utm_source``, ``utm_medium`` and
``utm_campaign`` (Google Analytics' convention, which Matomo and Plausible read too).
Pure: the query string in, one key out; other query parameters are never kept."""

from __future__ import annotations

from urllib.parse import parse_qs

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
NONE = "(none)"
#: Each part is cut to this many characters (the key stays short and bounded).
MAX_PART = 64
MAX_QUERY = 2048


def campaign_of(query: str | None) -> str:
    """``source / medium / campaign`` (a missing part is ``(none)``), or "" when the
    page URL has no UTM parameter at all (then no campaign row is counted)."""
    if not query or "utm_" not in query:
        return ""
    params = parse_qs(query[:MAX_QUERY].lstrip("?"), keep_blank_values=False, max_num_fields=64)
    parts = [" ".join(params.get(name, [""])[0].split())[:MAX_PART].lower() for name in UTM_FIELDS]
    if not any(parts):
        return ""
    return " / ".join(part or NONE for part in parts)
