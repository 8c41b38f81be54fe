"""Every refusal of the settings, word for word, and the edges of every bound: the value
at a bound is accepted, the one past it refused. An operator reads these messages to fix
a deployment, so a changed word or an edge moved by one is a regression."""

from __future__ import annotations

import dataclasses

import pytest

from portal_pulse.core.settings import (
    MAX_WORKERS,
    ConfigError,
    CounterSettings,
    RedisSettings,
    SessionSettings,
    Settings,
    _build,
    _coerce,
    load_settings,
)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PULSE_REDIS_URL": "http://db.example"},
         "redis.url: expected one of redis://, rediss://, unix://, valkey://, valkeys://, got 'http://db.example'"),
        ({"PULSE_REDIS_URL": "redis"},  # no scheme at all: not read as the scheme "redis"
         "redis.url: expected one of redis://, rediss://, unix://, valkey://, valkeys://, got 'redis'"),
        ({"PULSE_REDIS_COMMAND_TIMEOUT_SECONDS": "0"}, "redis.command_timeout_seconds: must be > 0, got 0.0"),
        ({"PULSE_REDIS_CONNECT_TIMEOUT_SECONDS": "-1"}, "redis.connect_timeout_seconds: must be > 0, got -1.0"),
        ({"PULSE_REDIS_MAX_CONNECTIONS": "0"}, "redis.max_connections: must be > 0, got 0"),
        ({"PULSE_REDIS_REPLICA_ACKS": "-1"}, "redis.replica_acks: must be an integer >= 0, got -1"),
        ({"PULSE_ACCESS_LOG": "loud"}, "access_log: expected one of summary, requests, off, got 'loud'"),
        ({"PULSE_ACCESS_LOG_INTERVAL_SECONDS": "0"}, "access_log_interval_seconds: must be > 0, got 0.0"),
        ({"PULSE_COUNTER_TOP_ENTRIES": "10001"}, "counter.top_entries: at most 10000, got 10001"),
        ({"PULSE_COUNTER_STATISTICS_FOLD_SECONDS": "60.5"}, "counter.statistics_fold_seconds: at most 60, got 60.5"),
        ({"PULSE_COUNTER_STATS_CACHE_SECONDS": "-0.5"}, "counter.stats_cache_seconds: must be >= 0"),
        ({"PULSE_COUNTER_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "counter.trusted_proxies: 'proxy' is not a network"),
        ({"PULSE_COUNTER_TRUSTED_PROXIES": "[oops"},
         "counter.trusted_proxies: not a JSON list (Expecting value: line 1 column 2 (char 1))"),
        ({"PULSE_SESSION_GRACE_SECONDS": "-0.5"},
         "session: grace_seconds and max_lifetime_seconds must be >= 0"),
        ({"PULSE_SESSION_MAX_LIFETIME_SECONDS": "-1"},
         "session: grace_seconds and max_lifetime_seconds must be >= 0"),
        ({"PULSE_COUNTER_WORKERS": str(MAX_WORKERS + 1), "PULSE_COUNTER_METRICS_PORT": "9100"},
         "counter.workers: must be between 1 and 64"),
        ({"PULSE_SESSION_WORKERS": "0"}, "session.workers: must be between 1 and 64"),
        ({"PULSE_COUNTER_WORKERS": "2", "PULSE_COUNTER_METRICS_PORT": "65535"},
         "counter.metrics_port: must leave room for one port per worker below 65536"),
        ({"PULSE_COUNTER_METRICS_PORT": "-1"},
         "counter.metrics_port: must leave room for one port per worker below 65536"),
        ({"PULSE_SESSION_WORKERS": "2"},
         "session.metrics_port: must be set when session.workers > 1, so that Prometheus scrapes every worker"
         " on a port of its own (worker i answers on metrics_port + i)"),
        ({"PULSE_REDIS": "x"}, "redis: expected a table, got str"),
        ({"PULSE_SITES": "[1]"}, "sites[0]: expected a table, got int"),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env=env)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "env",
    [
        {"PULSE_COUNTER_TOP_ENTRIES": "10000"},
        {"PULSE_COUNTER_STATISTICS_FOLD_SECONDS": "60"},
        {"PULSE_COUNTER_STATS_CACHE_SECONDS": "0"},  # 0: no cache
        {"PULSE_COUNTER_STATS_CACHE_SECONDS": "0.5"},
        {"PULSE_SESSION_GRACE_SECONDS": "0"},
        {"PULSE_SESSION_GRACE_SECONDS": "0.5"},
        {"PULSE_SESSION_MAX_LIFETIME_SECONDS": "0"},  # 0: no lifetime cap
        {"PULSE_REDIS_REPLICA_ACKS": "0"},
        {"PULSE_COUNTER_WORKERS": str(MAX_WORKERS), "PULSE_COUNTER_METRICS_PORT": "9100"},
        # two workers on the last two ports: 65534 and 65535
        {"PULSE_COUNTER_WORKERS": "2", "PULSE_COUNTER_METRICS_PORT": "65534"},
        {"PULSE_SESSION_METRICS_PORT": "65535"},
        # a URL whose query holds "://" is still a redis:// URL
        {"PULSE_REDIS_URL": "redis://db.example:6379/0?client_name=a://b"},
    ],
)
def test_the_value_at_each_bound_is_accepted(env: dict[str, str]) -> None:
    load_settings(env=env)


@pytest.mark.parametrize("acks", [1.5, True, "2"])
def test_replica_acks_must_be_a_whole_number_not_a_flag(acks: object) -> None:
    settings = dataclasses.replace(RedisSettings(), replica_acks=acks)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as refused:
        settings.validate("redis")
    assert str(refused.value) == f"redis.replica_acks: must be an integer >= 0, got {acks!r}"


def test_the_sections_validate_under_the_name_they_are_given() -> None:
    with pytest.raises(ConfigError, match=r"^r\.max_connections: "):
        RedisSettings(max_connections=0).validate("r")
    with pytest.raises(ConfigError, match=r"^c\.port: "):
        CounterSettings(port=0).validate("c")
    with pytest.raises(ConfigError, match=r"^s\.port: "):
        SessionSettings(port=0).validate("s")


def test_a_malformed_document_and_an_unknown_type_are_named() -> None:
    # Unreachable from load_settings (TOML is always a table, every field's type is
    # known): the messages a developer meets when adding a setting.
    with pytest.raises(ConfigError) as refused:
        _build(Settings, [], "")
    assert str(refused.value) == "settings: expected a table, got list"
    with pytest.raises(ConfigError) as refused:
        _coerce(complex, 1, "counter.ratio")
    assert str(refused.value) == "counter.ratio: unsupported setting type <class 'complex'>"
