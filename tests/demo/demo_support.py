"""Serve the session service and the demo portal together for the demo tests."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from portal_pulse.core.embedded import free_port
from portal_pulse.core.secret import Secret
from portal_pulse.core.settings import SiteSettings
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.demo.app import create_app as create_demo
from portal_pulse.session.app import create_app as create_session
from tests.conftest import SERVICE_TOKEN, ClientFactory, make_settings

Client = TestClient[web.Request, web.Application]


@dataclass
class Portal:
    demo: Client
    session: Client

    @property
    def demo_url(self) -> str:
        return str(self.demo.make_url("")).rstrip("/")

    @property
    def session_url(self) -> str:
        return str(self.session.make_url("")).rstrip("/")


async def serve_portal(
    redis_url: str, make_client: ClientFactory, idle_timeout: int = 20, prompt_seconds: int = 10,
    grace_seconds: float = 3.0, with_counter: bool = False,
) -> Portal:
    demo_port = free_port()
    origin = f"http://127.0.0.1:{demo_port}"
    settings = make_settings(redis_url, session={"origins": (origin,), "grace_seconds": grace_seconds},
                             sites=(SiteSettings("default", "Asia/Ho_Chi_Minh", (origin,)),),
                             counter={"stats_cache_seconds": 0})  # the figures include the page's own hit
    session = await make_client(create_session(settings))
    session_url = str(session.make_url("")).rstrip("/")
    # Without a counter nothing listens at its URL: the widget fails to load, the page still works.
    counter_url = f"http://127.0.0.1:{free_port()}"
    if with_counter:
        counter_url = str((await make_client(create_counter(settings))).make_url("")).rstrip("/")
    demo_app = create_demo(
        counter_url=counter_url,
        session_url=session_url,
        service_token=Secret(SERVICE_TOKEN),
        site="default",
        idle_timeout=idle_timeout,
        prompt_seconds=prompt_seconds,
    )
    demo: Client = TestClient(TestServer(demo_app, host="127.0.0.1", port=demo_port))
    await demo.start_server()
    return Portal(demo, session)
