"""The ``portal-pulse`` command: ``up`` (embedded default), ``counter``, ``session``,
``import nukeviet`` (see ``portal_pulse.importer.command``).

Every option is also an environment variable (``PULSE_REDIS_URL``, ``PULSE_HOST``,
``PULSE_PORT``, ``PULSE_CONFIG``); tokens are read only from the environment or the
config file, never from the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from portal_pulse.core.settings import ConfigError, Settings, load_settings, require_secret
from portal_pulse.importer.command import add_import_parser


def _common(parser: argparse.ArgumentParser, env: Mapping[str, str], default_port: int) -> None:
    parser.add_argument("--redis-url", default=env.get("PULSE_REDIS_URL"),
                        help="Redis/Valkey URL, e.g. redis://10.0.0.5:6379/0 (env PULSE_REDIS_URL)")
    parser.add_argument("--host", default=env.get("PULSE_HOST"),
                        help="address to listen on (env PULSE_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=_int(env.get("PULSE_PORT")),
                        help=f"port to listen on (env PULSE_PORT; default {default_port})")
    parser.add_argument("--config", type=Path, default=env.get("PULSE_CONFIG"),
                        help="TOML configuration file (env PULSE_CONFIG)")
    parser.add_argument("--log-level", default=env.get("PULSE_LOG_LEVEL"),
                        help="DEBUG, INFO, WARNING (env PULSE_LOG_LEVEL; default INFO)")
    parser.add_argument("--workers", type=int, default=_int(env.get("PULSE_WORKERS")),
                        help="processes sharing the port, one per core (env PULSE_WORKERS; default 1)")
    parser.add_argument("--metrics-port", type=int, default=_int(env.get("PULSE_METRICS_PORT")),
                        help="worker i also answers on this port + i, for Prometheus to scrape each "
                        "worker (env PULSE_METRICS_PORT; required with --workers > 1)")


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portal-pulse",
        description="Visit counters and session keep-alive for portals. "
        "Tokens (PULSE_ADMIN_TOKEN, PULSE_SERVICE_TOKEN) come only from the environment or --config.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="embedded default: Valkey on disk, both services, the demo portal")
    up.add_argument("--data-dir", type=Path, default=Path(env.get("PULSE_DATA_DIR", "var/data")),
                    help="where the embedded server keeps its data (env PULSE_DATA_DIR; default var/data)")
    up.add_argument("--host", default=env.get("PULSE_HOST", "127.0.0.1"), help="address to listen on")
    up.add_argument("--config", type=Path, default=env.get("PULSE_CONFIG"), help="TOML configuration file")
    up.add_argument("--demo-port", type=int, default=_int(env.get("PULSE_DEMO_PORT")) or 8000,
                    help="port of the demo portal page (env PULSE_DEMO_PORT; default 8000)")
    up.add_argument("--log-level", default=env.get("PULSE_LOG_LEVEL"), help="DEBUG, INFO, WARNING")
    _common(commands.add_parser("counter", help="run the counter service"), env, 8080)
    _common(commands.add_parser("session", help="run the session service"), env, 8081)
    add_import_parser(commands, env)
    return parser


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str], section: str) -> Settings:
    overrides: dict[str, Any] = {"redis.url": getattr(args, "redis_url", None), "log_level": args.log_level}
    if section in ("counter", "session"):
        overrides[f"{section}.host"] = args.host
        overrides[f"{section}.port"] = args.port
        overrides[f"{section}.workers"] = args.workers
        overrides[f"{section}.metrics_port"] = args.metrics_port
    return load_settings(args.config, env, overrides)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = build_parser(env).parse_args(argv)
    if args.command == "import":
        from portal_pulse.importer.command import run_import

        return run_import(args, env)
    try:
        if args.command == "up":
            from portal_pulse.up import run_embedded

            return run_embedded(args, env)
        settings = settings_from_args(args, env, args.command)
        if args.command == "counter":
            require_secret(settings)
    except ConfigError as exc:
        print(f"portal-pulse: configuration error: {exc}", file=sys.stderr)
        return 2
    from portal_pulse.core.runner import configure_logging

    configure_logging(settings.log_level)
    return serve_service(args.command, settings)


def serve_service(kind: str, settings: Settings) -> int:
    """Run one service, in this process or (``workers > 1``) in supervised workers."""
    from portal_pulse.core.runner import Served, run
    from portal_pulse.core.workers import Supervisor

    if kind == "counter":
        from portal_pulse.counter.app import create_app
    else:
        from portal_pulse.session.app import create_app
    options = settings.counter if kind == "counter" else settings.session

    def worker(index: int) -> None:
        extra = (options.metrics_port + index,) if options.metrics_port else ()
        run([Served(create_app(settings), options.host, options.port, kind,
                    reuse_port=options.workers > 1, extra_ports=extra)])

    if options.workers == 1:
        worker(0)
        return 0
    return Supervisor(worker, options.workers, name=f"{kind} worker").run()


if __name__ == "__main__":
    raise SystemExit(main())
