"""The demo portal's pages and its back-end sign-in against the real session service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import ClientFactory
from tests.demo.demo_support import Portal, serve_portal


@pytest.fixture
async def portal(valkey_url: str, make_client: ClientFactory) -> AsyncIterator[Portal]:
    served = await serve_portal(valkey_url, make_client)
    yield served
    await served.demo.close()


async def test_home_has_the_counter_block_and_sign_in(portal: Portal) -> None:
    response = await portal.demo.get("/")
    assert response.status == 200
    html = await response.text()
    assert '<div id="pulse-counter"><span class="pulse-fallback">' in html  # shown if the script never runs
    assert '/widget.js" data-site="default" data-lang="vi" data-breakdown="1"' in html
    assert '/v1/badge.svg?site=default&amp;lang=vi"' in html
    assert '/v1/hit.gif?site=default&amp;path=%2F"' in html  # the no-script pixel names the real path
    assert 'href="/signed-in"' in html
    assert '<html lang="vi">' in html
    policy = response.headers["Content-Security-Policy"]
    assert "style-src 'self' " in policy and "'unsafe-inline'" not in policy
    assert "<style" not in html and "style=" not in html  # nothing inline: the strict policy holds
    css = await portal.demo.get("/demo.css")
    assert css.status == 200 and css.content_type == "text/css" and "--pulse-accent" in await css.text()


async def test_sign_in_creates_one_shared_session_and_logout_ends_it(portal: Portal) -> None:
    first = await portal.demo.get("/signed-in")
    assert first.status == 200
    html = await first.text()
    session_id = first.cookies["pulse_demo_session"].value
    assert f'data-session="{session_id}"' in html
    assert f'src="{portal.session_url}/session.js"' in html
    assert 'data-member="1"' in html
    assert "path=%2Fsigned-in" in html
    state = await (await portal.session.get(f"/v1/sessions/{session_id}")).json()
    assert (state["state"], state["idle_timeout"], state["prompt_seconds"]) == ("active", 20, 10)

    again = await portal.demo.get("/signed-in")  # the cookie jar sends it back: same session
    assert f'data-session="{session_id}"' in await again.text()

    out = await portal.demo.post("/logout", allow_redirects=False)
    assert out.status == 303
    assert out.headers["Location"] == "/signed-out"
    state = await (await portal.session.get(f"/v1/sessions/{session_id}")).json()
    assert state["state"] == "ended"
    page = await portal.demo.get("/signed-out")
    assert "đăng xuất" in (await page.text()).lower()

    fresh = await portal.demo.get("/signed-in")  # an ended session is replaced by a new one
    assert f'data-session="{session_id}"' not in await fresh.text()
