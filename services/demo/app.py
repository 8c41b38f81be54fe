"""The demo portal: a portal-like page with the counter block, and a fake sign-in whose
back end creates a session on the session service (with the service token, as a real
portal would) and renders a signed-in page with ``session.js``.

The session id is kept in an HttpOnly cookie so every tab of the browser shares one
session, as on a real portal.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from portal_pulse.core.secret import Secret
from portal_pulse.demo import pages

COOKIE = "pulse_demo_session"
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)
CALL_TIMEOUT = aiohttp.ClientTimeout(total=5)
HTML = "text/html"
NO_STORE = {"Cache-Control": "no-store"}
SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")  # what may go back into a URL path


def create_app(
    counter_url: str,
    session_url: str,
    service_token: Secret,
    site: str,
    *,
    idle_timeout: int = 20,
    prompt_seconds: int = 10,
) -> web.Application:
    counter_url = counter_url.rstrip("/")
    session_url = session_url.rstrip("/")
    app = web.Application()
    policy = pages.csp(counter_url, session_url)
    headers = {**NO_STORE, "Content-Security-Policy": policy}
    auth = {"Authorization": f"Bearer {service_token.reveal()}"}

    async def http_client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=CALL_TIMEOUT) as client:
            app[HTTP_CLIENT] = client
            yield

    app.cleanup_ctx.append(http_client)

    async def live_session(session_id: str | None) -> bool:
        if not session_id or not SESSION_ID.match(session_id):
            return False
        async with app[HTTP_CLIENT].get(f"{session_url}/v1/sessions/{session_id}") as response:
            if response.status != 200:
                return False
            body: dict[str, Any] = await response.json()
            return body.get("state") in ("active", "prompt")

    async def create_session() -> str:
        body = {"subject": "demo-user", "idle_timeout": idle_timeout, "prompt_seconds": prompt_seconds}
        async with app[HTTP_CLIENT].post(f"{session_url}/v1/sessions", json=body, headers=auth) as response:
            if response.status != 201:
                raise web.HTTPServiceUnavailable(text="the session service refused the sign-in")
            created: dict[str, Any] = await response.json()
            return str(created["id"])

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=pages.home(counter_url, site), content_type=HTML, headers=headers)

    async def signed_in(request: web.Request) -> web.Response:
        session_id = request.cookies.get(COOKIE)
        try:
            if not await live_session(session_id):
                session_id = await create_session()
        except aiohttp.ClientError as exc:
            raise web.HTTPServiceUnavailable(text="the session service is not answering") from exc
        assert session_id is not None
        html = pages.signed_in(counter_url, session_url, site, session_id, idle_timeout, prompt_seconds)
        response = web.Response(text=html, content_type=HTML, headers=headers)
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="Lax", path="/")
        return response

    async def logout(request: web.Request) -> web.Response:
        session_id = request.cookies.get(COOKIE)
        if session_id and SESSION_ID.match(session_id):
            try:
                async with app[HTTP_CLIENT].delete(f"{session_url}/v1/sessions/{session_id}") as response:
                    await response.read()
            except aiohttp.ClientError:
                pass  # signing out locally still works; the session expires on its own
        raise web.HTTPSeeOther("/signed-out")

    async def signed_out(request: web.Request) -> web.Response:
        response = web.Response(text=pages.signed_out(counter_url, site), content_type=HTML, headers=headers)
        response.del_cookie(COOKIE, path="/")
        return response

    async def stylesheet(request: web.Request) -> web.Response:
        return web.Response(text=pages.STYLE, content_type="text/css", headers={"Cache-Control": "public, max-age=60"})

    app.router.add_get("/", home)
    app.router.add_get("/demo.css", stylesheet)
    app.router.add_get("/signed-in", signed_in)
    app.router.add_post("/logout", logout)
    app.router.add_get("/signed-out", signed_out)
    return app
