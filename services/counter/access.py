"""Read access to a site's statistics: public, or behind the site's ``stats_token``
(``?token=`` or ``Authorization: Bearer``), compared in constant time."""

from __future__ import annotations

from aiohttp import web

from portal_pulse.core.errors import ApiError
from portal_pulse.core.settings import SiteSettings


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("token")


def require_read_access(request: web.Request, site: SiteSettings) -> None:
    if site.stats_token is None:
        return
    token = presented_token(request)
    try:
        granted = token is not None and site.stats_token.matches(token)
    except UnicodeEncodeError:
        granted = False
    if not granted:
        raise ApiError(401, "unauthorized", f"the statistics of site {site.name!r} need its read token",
                       headers={"WWW-Authenticate": 'Bearer realm="stats"'})
