"""How the loader reads values (environment strings, TOML types) and the exact error each
wrong value gives: written to kill the mutants mutmut found alive in ``_coerce``,
``_build`` and ``_set_dotted`` (see docs/testing.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal_pulse.core.secret import Secret
from portal_pulse.core.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("1", True), ("true", True), ("Yes", True), ("ON", True), ("0", False), ("False", False), ("no", False),
     ("off", False)],
)
def test_every_boolean_spelling(spelling: str, value: bool) -> None:
    settings = load_settings(env={"PULSE_COUNTER_RATE_LIMITS_ENABLED": spelling})
    assert settings.counter.rate_limits_enabled is value


def test_toml_types_are_taken_as_they_are(tmp_path: Path) -> None:
    config = tmp_path / "pulse.toml"
    config.write_text(
        "log_level = \"DEBUG\"\n[counter]\nrate_limits_enabled = false\nstats_cache_seconds = 2\n"
        "visit_window_seconds = 600.0\n[session]\norigins = [\"https://a.example\"]\n"
        "[redis]\nurl = \"redis://db.example:6379/0\"\n",
        encoding="utf-8",
    )
    settings = load_settings(config, {})
    assert settings.log_level == "DEBUG"
    assert settings.counter.rate_limits_enabled is False
    assert settings.counter.stats_cache_seconds == 2.0 and isinstance(settings.counter.stats_cache_seconds, float)
    assert settings.counter.visit_window_seconds == 600 and isinstance(settings.counter.visit_window_seconds, int)
    assert settings.session.origins == ("https://a.example",)


def test_file_is_read_as_utf8(tmp_path: Path) -> None:
    config = tmp_path / "pulse.toml"
    config.write_bytes('admin_token = "mật-khẩu-đủ-dài"\n'.encode())
    assert load_settings(config, {}).admin_token == Secret("mật-khẩu-đủ-dài")


def test_an_empty_optional_value_is_none() -> None:
    assert load_settings(env={"PULSE_ADMIN_TOKEN": ""}).admin_token is None
    assert load_settings(env={"PULSE_ADMIN_TOKEN": "set"}).admin_token == Secret("set")


def test_json_list_in_the_environment() -> None:
    settings = load_settings(env={"PULSE_COUNTER_TRUSTED_PROXIES": ' ["10.0.0.0/8", "::1/128"]'})
    assert settings.counter.trusted_proxies == ("10.0.0.0/8", "::1/128")


def test_overrides_of_none_are_ignored() -> None:
    settings = load_settings(env={"PULSE_COUNTER_PORT": "9000"}, overrides={"counter.port": None})
    assert settings.counter.port == 9000


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("counter = 5\n", "counter: expected a table, got int"),
        ("[counter]\nport = \"x\"\n", "counter.port: expected a number, got 'x'"),
        ("[counter]\nport = true\n", "counter.port: expected a number, got True"),
        ("[counter]\nport = 80.5\n", "counter.port: expected a whole number, got 80.5"),
        ("[counter]\nrate_limits_enabled = 3\n", "counter.rate_limits_enabled: expected true or false, got 3"),
        ("[session]\norigins = 5\n", "session.origins: expected a list"),
        ("log_level = 3\n", "log_level: expected a string, got 3"),
        ("admin_token = 7\n", "admin_token: expected a non-empty string"),
        ("sites = [5]\n", "sites[0]: expected a table, got int"),
        ("[counter]\nportt = 1\n", "counter.portt: no such setting"),
        ("nope = 1\n", "nope: no such setting"),
    ],
)
def test_wrong_types_name_the_key_and_say_why(tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "pulse.toml"
    config.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, {})
    assert str(raised.value) == message


def test_a_dotted_override_into_a_value_that_is_not_a_section() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"PULSE_LOG_LEVEL": "INFO"}, overrides={"log_level.x": "1"})
    assert str(raised.value) == "log_level.x: log_level is not a section"


def test_variables_of_the_command_line_and_other_programs_are_not_settings() -> None:
    env = {"HOME": "/root", "PULSE_CONFIG": "/etc/pulse.toml", "PULSE_HOST": "0.0.0.0", "PULSE_PORT": "1",
           "PULSE_COUNTER_PORT": "9000"}
    assert load_settings(env=env).counter.port == 9000  # and nothing above is "no such setting"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PULSE_SESSION_SCHEDULER_BATCH": "0"}, "session.scheduler_batch: must be > 0, got 0"),
        ({"PULSE_COUNTER_BATCH_MAX_HITS": "-1"}, "counter.batch_max_hits: must be > 0, got -1"),
        ({"PULSE_REDIS_MAX_CONNECTIONS": "0"}, "redis.max_connections: must be > 0, got 0"),
        ({"PULSE_SESSION_PROMPT_SECONDS": "1800"}, "session.prompt_seconds: must be shorter than idle_timeout_seconds"),
        ({"PULSE_COUNTER_STATS_CACHE_SECONDS": "-0.5"}, "counter.stats_cache_seconds: must be >= 0"),
        ({"PULSE_SESSION_GRACE_SECONDS": "-1"}, "session: grace_seconds and max_lifetime_seconds must be >= 0"),
        ({"PULSE_SESSION_MAX_LIFETIME_SECONDS": "-1"}, "session: grace_seconds and max_lifetime_seconds must be >= 0"),
        ({"PULSE_REDIS_URL": "http://db.example"},
         "redis.url: expected one of redis://, rediss://, unix://, valkey://, valkeys://, got 'http://db.example'"),
        ({"PULSE_REDIS_URL": "redis"},  # no scheme at all: not read as the scheme "redis"
         "redis.url: expected one of redis://, rediss://, unix://, valkey://, valkeys://, got 'redis'"),
        ({"PULSE_REDIS_COMMAND_TIMEOUT_SECONDS": "0"}, "redis.command_timeout_seconds: must be > 0, got 0.0"),
        ({"PULSE_REDIS_CONNECT_TIMEOUT_SECONDS": "-1"}, "redis.connect_timeout_seconds: must be > 0, got -1.0"),
        ({"PULSE_REDIS_REPLICA_ACKS": "-1"}, "redis.replica_acks: must be an integer >= 0, got -1"),
        ({"PULSE_ACCESS_LOG": "loud"}, "access_log: expected one of summary, requests, off, got 'loud'"),
        ({"PULSE_ACCESS_LOG_INTERVAL_SECONDS": "0"}, "access_log_interval_seconds: must be > 0, got 0.0"),
        ({"PULSE_COUNTER_TOP_ENTRIES": "10001"}, "counter.top_entries: at most 10000, got 10001"),
        ({"PULSE_COUNTER_STATISTICS_FOLD_SECONDS": "60.5"}, "counter.statistics_fold_seconds: at most 60, got 60.5"),
        ({"PULSE_COUNTER_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "counter.trusted_proxies: 'proxy' is not a network"),
        ({"PULSE_COUNTER_TRUSTED_PROXIES": "[oops"},
         "counter.trusted_proxies: not a JSON list (Expecting value: line 1 column 2 (char 1))"),
        ({"PULSE_SESSION_GRACE_SECONDS": "-0.5"},
         "session: grace_seconds and max_lifetime_seconds must be >= 0"),
        ({"PULSE_COUNTER_WORKERS": "65", "PULSE_COUNTER_METRICS_PORT": "9100"},
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
def test_out_of_range_values_name_the_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert str(raised.value) == message


def test_a_trusted_proxy_may_be_written_with_host_bits() -> None:
    settings = load_settings(env={"PULSE_COUNTER_TRUSTED_PROXIES": "10.1.2.3/8"})
    assert [str(n) for n in settings.counter.trusted_networks] == ["10.0.0.0/8"]


def test_at_least_one_site() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"PULSE_SITES": "[]"})
    assert str(raised.value) == "sites: at least one site is required"
