"""Settings: one frozen, typed object, built and validated once at start-up.

Sources, later ones winning: the defaults below, a TOML file, environment variables
(``PULSE_<SECTION>_<KEY>``, e.g. ``PULSE_REDIS_URL``, ``PULSE_COUNTER_PORT``), and the
command line. Tokens and the hashing secret come only from the file or the environment.
Every error names the key that is wrong.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portal_pulse.core.origins import masked_url
from portal_pulse.core.secret import Secret
from portal_pulse.core.setting_checks import ConfigError as ConfigError
from portal_pulse.core.setting_checks import check_origins, normalised_origins, port, positive, setting_key

ENV_PREFIX = "PULSE_"
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
REDIS_SCHEMES = ("redis", "rediss", "unix", "valkey", "valkeys")


@dataclass(frozen=True)
class SiteSettings:
    """One portal site. Sites come from configuration, never from traffic."""

    name: str = "default"
    timezone: str = "Asia/Ho_Chi_Minh"
    origins: tuple[str, ...] = ()
    #: Read token of the statistics page and API of this site; None: public.
    stats_token: Secret | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "origins", normalised_origins(self.origins))

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class RedisSettings:
    url: str = "redis://127.0.0.1:6379/0"
    cluster: bool = False
    command_timeout_seconds: float = 1.0
    connect_timeout_seconds: float = 1.0
    max_connections: int = 64
    #: Acknowledge a batch only after this many replicas confirmed it (``WAIT``).
    replica_acks: int = 0

    def __repr__(self) -> str:
        return (
            f"RedisSettings(url={masked_url(self.url)!r}, cluster={self.cluster!r}, "
            f"command_timeout_seconds={self.command_timeout_seconds!r}, "
            f"connect_timeout_seconds={self.connect_timeout_seconds!r}, max_connections={self.max_connections!r}, "
            f"replica_acks={self.replica_acks!r})"
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisSettings:
        settings = cls(url=url, **options)
        settings.validate("redis")
        return settings

    def validate(self, where: str) -> None:
        scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
        if scheme not in REDIS_SCHEMES:
            raise ConfigError(
                f"{where}.url: expected one of {', '.join(s + '://' for s in REDIS_SCHEMES)},"
                f" got {masked_url(self.url)!r}"
            )
        try:
            urlsplit(self.url).port  # noqa: B018 - raises on a port outside 0..65535
        except ValueError as exc:
            raise ConfigError(f"{where}.url: {exc} in {masked_url(self.url)!r}") from exc
        positive(where, "command_timeout_seconds", self.command_timeout_seconds)
        positive(where, "connect_timeout_seconds", self.connect_timeout_seconds)
        positive(where, "max_connections", self.max_connections)
        if isinstance(self.replica_acks, bool) or not isinstance(self.replica_acks, int) or self.replica_acks < 0:
            raise ConfigError(f"{where}.replica_acks: must be an integer >= 0, got {self.replica_acks!r}")


@dataclass(frozen=True)
class HttpSettings:
    """Connection limits of every HTTP listener (both services and the demo)."""

    header_timeout_seconds: float = 10.0  # from a connection's (or request's) first byte to its headers' end
    keepalive_timeout_seconds: float = 30.0  # an idle kept-alive connection is closed after this
    max_connections: int = 10_000  # per process; lowered to fit the file limit

    def validate(self, where: str) -> None:
        for name in ("header_timeout_seconds", "keepalive_timeout_seconds", "max_connections"):
            positive(where, name, getattr(self, name))


@dataclass(frozen=True)
class CounterSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    visit_window_seconds: int = 1800
    online_window_seconds: int = 300
    stats_cache_seconds: float = 1.0
    max_body_bytes: int = 8192
    max_path_length: int = 1024
    max_referrer_length: int = 2048
    max_visitor_length: int = 128
    max_event_id_length: int = 128
    dedupe_seconds: int = 86400
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    rate_limits_enabled: bool = True
    max_hits_per_visitor_per_minute: int = 120
    max_hits_per_ip_per_minute: int = 6000
    max_new_visits_per_ip_per_hour: int = 3000
    batch_max_hits: int = 1024
    max_pending_hits: int = 8192  # beyond this many hits waiting for storage, answer 503 at once
    commit_timeout_seconds: float = 2.0
    commits_in_flight: int = 2  # group commits sent to Redis at once, each on its own connection
    max_series_buckets: int = 1000
    workers: int = 1  # processes sharing the port (SO_REUSEPORT); see core/workers.py
    metrics_port: int = 0  # worker i also answers on metrics_port + i; 0: only on port
    statistics_enabled: bool = True  # count the statistics dimensions (pages, referrers, ...)
    top_entries: int = 100  # rows kept per dimension and day/month: the top by visits; the rest is (other)
    statistics_fold_seconds: float = 0.25  # how often the statistics log is counted into the top lists
    user_agent_cache_size: int = 4096  # parsed User-Agents kept (LRU)
    # bounded growth (hit.lua): what a client can make Redis keep
    max_new_paths_per_ip_per_hour: int = 100  # new per-path records; past it a pageview counts for the site only
    path_retention_seconds: int = 30 * 86400  # a new per-path record expires after this...
    path_keep_views: int = 10  # ...unless it reaches this many views (or downloads): then it is kept
    event_ids_per_visitor: int = 16  # retries recognised by event id alone (clients without a sequence number)
    max_bot_hits_per_ip_per_minute: int = 600
    max_online_bots: int = 10_000  # the bots' online window keeps the most recent this many
    max_series_per_second: float = 20.0  # per process, bursts of as many; beyond, reads wait up to 1 s, then 429

    def validate(self, where: str) -> None:
        _check_workers(where, self.workers, self.metrics_port)
        port(where, "port", self.port)
        for name in (
            "visit_window_seconds", "online_window_seconds", "max_body_bytes",
            "max_path_length", "max_referrer_length", "max_visitor_length",
            "max_event_id_length", "dedupe_seconds", "max_hits_per_visitor_per_minute",
            "max_hits_per_ip_per_minute", "max_new_visits_per_ip_per_hour",
            "batch_max_hits", "max_pending_hits", "commit_timeout_seconds", "commits_in_flight",
            "max_series_buckets", "top_entries", "user_agent_cache_size", "max_series_per_second",
            "statistics_fold_seconds",
            "max_new_paths_per_ip_per_hour", "path_retention_seconds", "path_keep_views", "event_ids_per_visitor",
            "max_bot_hits_per_ip_per_minute", "max_online_bots",
        ):
            positive(where, name, getattr(self, name))
        if self.top_entries > 10_000:
            raise ConfigError(f"{where}.top_entries: at most 10000, got {self.top_entries!r}")
        if self.statistics_fold_seconds > 60:
            raise ConfigError(f"{where}.statistics_fold_seconds: at most 60, got {self.statistics_fold_seconds!r}")
        if self.stats_cache_seconds < 0:
            raise ConfigError(f"{where}.stats_cache_seconds: must be >= 0")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as exc:
                raise ConfigError(f"{where}.trusted_proxies: {proxy!r} is not a network") from exc

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies)


@dataclass(frozen=True)
class SessionSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    idle_timeout_seconds: int = 1800
    prompt_seconds: int = 60
    grace_seconds: float = 3.0
    max_lifetime_seconds: int = 43200  # 12 h from creation, whatever the activity; 0 (set explicitly): none
    origins: tuple[str, ...] = ()
    scheduler_max_sleep_seconds: float = 0.25
    scheduler_batch: int = 500  # due sessions per bucket per script call
    stream_maxlen: int = 100_000  # entries kept (about) in each bucket's event stream
    max_body_bytes: int = 4096
    max_streams_per_session: int = 32
    workers: int = 1  # processes sharing the port (SO_REUSEPORT); see core/workers.py
    metrics_port: int = 0  # worker i also answers on metrics_port + i; 0: only on port
    #: /readyz answers 503 once a background task (scheduler, event bus) has gone this
    #: long without completing a unit of work.
    background_stale_seconds: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "origins", normalised_origins(self.origins))

    def validate(self, where: str) -> None:
        _check_workers(where, self.workers, self.metrics_port)
        port(where, "port", self.port)
        check_origins(f"{where}.origins", self.origins)
        for name in (
            "idle_timeout_seconds", "prompt_seconds",
            "scheduler_max_sleep_seconds", "scheduler_batch", "stream_maxlen",
            "max_body_bytes", "max_streams_per_session", "background_stale_seconds",
        ):
            positive(where, name, getattr(self, name))
        if self.prompt_seconds >= self.idle_timeout_seconds:
            raise ConfigError(f"{where}.prompt_seconds: must be shorter than idle_timeout_seconds")
        if self.grace_seconds < 0 or self.max_lifetime_seconds < 0:
            raise ConfigError(f"{where}: grace_seconds and max_lifetime_seconds must be >= 0")


MAX_WORKERS = 64
ACCESS_LOG_MODES = ("summary", "requests", "off")


def _check_workers(where: str, workers: int, metrics_port: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"{where}.workers: must be between 1 and {MAX_WORKERS}")
    if not 0 <= metrics_port <= 65535 - workers + 1:
        raise ConfigError(f"{where}.metrics_port: must leave room for one port per worker below 65536")
    if workers > 1 and metrics_port == 0:
        raise ConfigError(
            f"{where}.metrics_port: must be set when {where}.workers > 1, so that Prometheus "
            "scrapes every worker on a port of its own (worker i answers on metrics_port + i)"
        )


@dataclass(frozen=True)
class Settings:
    redis: RedisSettings = field(default_factory=RedisSettings)
    counter: CounterSettings = field(default_factory=CounterSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    sites: tuple[SiteSettings, ...] = (SiteSettings(),)
    admin_token: Secret | None = None
    service_token: Secret | None = None
    secret: Secret | None = None  # seeds the daily visitor-hash salt (PULSE_SECRET); never stored in Redis
    secret_file: str | None = None  # or: a file holding it (read at start-up; e.g. a mounted secret)
    log_level: str = "INFO"
    access_log: str = "summary"  # summary (a line per route every interval), requests, off
    access_log_interval_seconds: float = 10.0

    def validate(self) -> Settings:
        if self.access_log not in ACCESS_LOG_MODES:
            raise ConfigError(f"access_log: expected one of {', '.join(ACCESS_LOG_MODES)}, got {self.access_log!r}")
        positive("", "access_log_interval_seconds", self.access_log_interval_seconds)
        self.redis.validate("redis")
        self.counter.validate("counter")
        self.session.validate("session")
        self.http.validate("http")
        if not self.sites:
            raise ConfigError("sites: at least one site is required")
        seen: set[str] = set()
        for index, site in enumerate(self.sites):
            where = f"sites[{index}]"
            if not SITE_NAME.match(site.name):
                raise ConfigError(f"{where}.name: {site.name!r} must match {SITE_NAME.pattern}")
            if site.name in seen:
                raise ConfigError(f"{where}.name: {site.name!r} is defined twice")
            seen.add(site.name)
            try:
                ZoneInfo(site.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ConfigError(f"{where}.timezone: unknown IANA zone {site.timezone!r}") from exc
            check_origins(f"{where}.origins", site.origins)
        return self

    @cached_property
    def site_map(self) -> Mapping[str, SiteSettings]:
        return {site.name: site for site in self.sites}

    def site(self, name: str) -> SiteSettings | None:
        return self.site_map.get(name)


SECRET_KEYS = frozenset({"admin_token", "service_token", "secret"})
#: Variables the command line reads for the one service it starts (``services/cli.py``).
COMMAND_ENV = frozenset({"PULSE_CONFIG", "PULSE_HOST", "PULSE_PORT", "PULSE_WORKERS", "PULSE_METRICS_PORT"})


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults, a TOML file, the environment and CLI overrides.

    ``overrides`` uses dotted keys (``{"redis.url": ..., "counter.port": 8090}``);
    secrets are refused there because the command line is visible to every user.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
    for key, raw in _env_values(env or {}).items():
        _set_dotted(data, key, raw)
    for key, value in (overrides or {}).items():
        if key in SECRET_KEYS:
            raise ConfigError(f"{key}: tokens are read only from the environment or the config file")
        if value is not None:
            _set_dotted(data, key, value)
    settings: Settings = _build(Settings, data, "")
    return with_secret_file(settings).validate()


def with_secret_file(settings: Settings) -> Settings:
    """``settings`` with ``secret`` read from ``secret_file`` when that is set."""
    if not settings.secret_file:
        return settings
    if settings.secret is not None:
        raise ConfigError("secret_file: set either secret (PULSE_SECRET) or secret_file, not both")
    try:
        text = Path(settings.secret_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"secret_file: cannot read {settings.secret_file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"secret_file: {settings.secret_file} is not UTF-8 text") from exc
    if len(text) < MIN_SECRET_CHARS:
        raise ConfigError(f"secret_file: {settings.secret_file} holds fewer than {MIN_SECRET_CHARS} characters")
    return dataclasses.replace(settings, secret=Secret(text))


#: A secret shorter than this is guessable; ``portal-pulse up`` writes 64 hex characters.
MIN_SECRET_CHARS = 16


def require_secret(settings: Settings) -> None:
    """Production mode (any service started on its own, not by ``portal-pulse up``) needs
    a configured secret: without it each process would hash addresses differently."""
    if settings.secret is None:
        raise ConfigError(
            "secret: required when the counter runs on its own: set PULSE_SECRET or secret_file"
            " (PULSE_SECRET_FILE) to a random value shared by every counter process, kept out of Redis"
            " (e.g. `openssl rand -hex 32`); only `portal-pulse up` creates one itself"
        )


def _env_values(env: Mapping[str, str]) -> dict[str, str]:
    """Map PULSE_* variables onto dotted keys, using the dataclass fields as the grammar."""
    found: dict[str, str] = {}
    top = {f.name: f for f in dataclasses.fields(Settings)}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in COMMAND_ENV:
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in top:
            found[key] = value
            continue
        section, _, rest = key.partition("_")
        hint = _hints(Settings).get(section)
        if dataclasses.is_dataclass(hint) and rest in {f.name for f in dataclasses.fields(hint)}:
            found[f"{section}.{rest}"] = value
        else:
            raise ConfigError(f"{name}: no such setting")
    return found


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'settings'}: expected a table, got {type(data).__name__}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{setting_key(where, unknown[0])}: no such setting")
    kwargs = {name: _coerce(hints[name], value, setting_key(where, name)) for name, value in data.items()}
    return cls(**kwargs)  # every field known and of its type: no constructor refuses them


def _json_list(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: not a JSON list ({exc})") from exc


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or value == "":
            return None
        return _coerce(args[0], value, where)
    if hint is Secret:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a non-empty string")
        return Secret(value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        if isinstance(value, str):
            value = _json_list(value, where) if value.lstrip().startswith("[") else [
                v.strip() for v in value.split(",") if v.strip()
            ]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list")
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from exc
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")
