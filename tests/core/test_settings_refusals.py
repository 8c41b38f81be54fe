"""The edges of every bound (the value at a bound is accepted; the one past it is refused
word for word in test_settings_loader's table), and the refusals that need more than an
environment: an edge moved by one or a changed word is a regression an operator meets."""

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
