from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from portal_pulse.core.origins import masked_url
from portal_pulse.core.secret import Secret
from portal_pulse.core.settings import (
    ConfigError,
    CounterSettings,
    RedisSettings,
    SessionSettings,
    Settings,
    SiteSettings,
    load_settings,
    require_secret,
)
from portal_pulse.counter.app import create_app as create_counter
from portal_pulse.session.app import create_app as create_session


def test_defaults_are_sane() -> None:
    settings = load_settings(env={})
    assert settings.redis.url == "redis://127.0.0.1:6379/0"
    assert settings.counter.port == 8080
    assert settings.session.port == 8081
    assert settings.session.idle_timeout_seconds == 1800
    assert settings.session.prompt_seconds == 60
    assert settings.counter.visit_window_seconds == 1800
    assert settings.counter.online_window_seconds == 300
    assert [s.name for s in settings.sites] == ["default"]
    assert settings.sites[0].zone.key == "Asia/Ho_Chi_Minh"
    assert settings.admin_token is None


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "pulse.toml"
    config.write_text(
        'admin_token = "from-file"\n'
        "[redis]\nurl = \"redis://file:6379/0\"\n"
        "[counter]\nport = 9000\nvisit_window_seconds = 600\n"
        "[[sites]]\nname = \"news\"\ntimezone = \"Europe/Berlin\"\norigins = [\"https://news.example\"]\n",
        encoding="utf-8",
    )
    env = {"PULSE_REDIS_URL": "redis://env:6379/1", "PULSE_COUNTER_ONLINE_WINDOW_SECONDS": "120"}
    settings = load_settings(config, env, {"counter.port": 9100})
    assert settings.redis.url == "redis://env:6379/1"
    assert settings.counter.port == 9100
    assert settings.counter.visit_window_seconds == 600
    assert settings.counter.online_window_seconds == 120
    news = settings.site("news")
    assert news is not None and news.origins == ("https://news.example",)
    assert settings.admin_token == Secret("from-file")


def test_env_lists_and_sites_json() -> None:
    env = {
        "PULSE_COUNTER_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
        "PULSE_SITES": '[{"name": "a", "timezone": "UTC"}, {"name": "b"}]',
        "PULSE_SESSION_ORIGINS": "https://a.example,https://b.example",
        "PULSE_COUNTER_RATE_LIMITS_ENABLED": "off",
    }
    settings = load_settings(env=env)
    assert settings.counter.trusted_proxies == ("10.0.0.0/8", "192.168.1.1")
    assert [s.name for s in settings.sites] == ["a", "b"]
    assert settings.session.origins == ("https://a.example", "https://b.example")
    assert settings.counter.rate_limits_enabled is False


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"PULSE_COUNTER_PORT": "eighty"}, "counter.port"),
        ({"PULSE_COUNTER_PORT": "0"}, "counter.port"),
        ({"PULSE_COUNTER_NOPE": "1"}, "PULSE_COUNTER_NOPE"),
        ({"PULSE_REDIS_URL": "http://x"}, "redis.url"),
        ({"PULSE_SITES": '[{"name": "Bad Name"}]'}, "sites[0].name"),
        ({"PULSE_SITES": '[{"name": "a", "timezone": "Mars/Olympus"}]'}, "sites[0].timezone"),
        ({"PULSE_SITES": '[{"name": "a"}, {"name": "a"}]'}, "sites[1].name"),
        ({"PULSE_SESSION_PROMPT_SECONDS": "4000"}, "session.prompt_seconds"),
        ({"PULSE_COUNTER_TRUSTED_PROXIES": "not-a-net"}, "counter.trusted_proxies"),
        ({"PULSE_COUNTER_RATE_LIMITS_ENABLED": "maybe"}, "counter.rate_limits_enabled"),
        ({"PULSE_HTTP_HEADER_TIMEOUT_SECONDS": "0"}, "http.header_timeout_seconds"),
        ({"PULSE_HTTP_KEEPALIVE_TIMEOUT_SECONDS": "-1"}, "http.keepalive_timeout_seconds"),
        ({"PULSE_HTTP_MAX_CONNECTIONS": "many"}, "http.max_connections"),
    ],
)
def test_errors_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_settings(env=env)


def test_tokens_never_from_the_command_line() -> None:
    with pytest.raises(ConfigError, match="admin_token"):
        load_settings(env={}, overrides={"admin_token": "visible-in-ps"})


def test_unknown_file_key_and_bad_toml(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[counter]\nportt = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"counter\.portt"):
        load_settings(config, {})
    config.write_text("[counter\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings(config, {})
    with pytest.raises(ConfigError, match="missing.toml"):
        load_settings(tmp_path / "missing.toml", {})


def test_secrets_are_masked() -> None:
    settings = load_settings(env={"PULSE_ADMIN_TOKEN": "s3cr3t-value", "PULSE_SERVICE_TOKEN": "other"})
    assert "s3cr3t-value" not in repr(settings)
    assert settings.admin_token is not None and settings.admin_token.matches("s3cr3t-value")
    assert not settings.admin_token.matches("s3cr3t-valuE")


def test_redis_from_url_rejects_nonsense() -> None:
    assert RedisSettings.from_url("valkey://h:1/0").url == "valkey://h:1/0"
    with pytest.raises(ConfigError, match="redis.url"):
        RedisSettings.from_url("localhost:6379")
    with pytest.raises(ConfigError, match="command_timeout_seconds"):
        RedisSettings.from_url("redis://h", command_timeout_seconds=0)


@pytest.mark.parametrize("section", ["counter", "session"])
def test_workers_need_a_metrics_port_each(section: str) -> None:
    prefix = f"PULSE_{section.upper()}_"
    settings = load_settings(env={f"{prefix}WORKERS": "2", f"{prefix}METRICS_PORT": "9100"})
    assert getattr(settings, section).workers == 2
    with pytest.raises(ConfigError, match=f"{section}.metrics_port: must be set"):
        load_settings(env={f"{prefix}WORKERS": "2"})
    with pytest.raises(ConfigError, match=f"{section}.workers"):
        load_settings(env={f"{prefix}WORKERS": "0"})
    with pytest.raises(ConfigError, match=f"{section}.metrics_port"):
        load_settings(env={f"{prefix}WORKERS": "4", f"{prefix}METRICS_PORT": "65534"})


def test_http_limits_have_safe_defaults_and_come_from_the_environment() -> None:
    http = load_settings(env={}).http
    assert (http.header_timeout_seconds, http.keepalive_timeout_seconds, http.max_connections) == (10.0, 30.0, 10_000)
    tuned = load_settings(env={"PULSE_HTTP_HEADER_TIMEOUT_SECONDS": "2.5", "PULSE_HTTP_MAX_CONNECTIONS": "500"}).http
    assert (tuned.header_timeout_seconds, tuned.max_connections) == (2.5, 500)


def test_the_secret_comes_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("  a-long-random-secret-value-0123\n", encoding="utf-8")
    settings = load_settings(env={"PULSE_SECRET_FILE": str(path)})
    assert settings.secret is not None and settings.secret.reveal() == "a-long-random-secret-value-0123"
    with pytest.raises(ConfigError, match="secret_file: set either"):
        load_settings(env={"PULSE_SECRET_FILE": str(path), "PULSE_SECRET": "x" * 20})
    with pytest.raises(ConfigError, match="secret_file: cannot read"):
        load_settings(env={"PULSE_SECRET_FILE": str(tmp_path / "missing")})
    path.write_text("short\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="secret_file: .* fewer than 16"):
        load_settings(env={"PULSE_SECRET_FILE": str(path)})


def test_production_mode_requires_a_secret() -> None:
    with pytest.raises(ConfigError, match="secret: required .*PULSE_SECRET or secret_file"):
        require_secret(load_settings(env={}))
    require_secret(load_settings(env={"PULSE_SECRET": "x" * 32}))


def test_sessions_have_a_12_hour_lifetime_unless_0_is_set() -> None:
    assert load_settings(env={}).session.max_lifetime_seconds == 43200
    assert load_settings(env={"PULSE_SESSION_MAX_LIFETIME_SECONDS": "0"}).session.max_lifetime_seconds == 0


@pytest.mark.parametrize(
    ("given", "served"),
    [
        ("https://Portal.Example.GOV.vn/", "https://portal.example.gov.vn"),
        ("HTTPS://portal.example:443", "https://portal.example"),
        ("http://portal.example:80/", "http://portal.example"),
        ("http://portal.example:8080", "http://portal.example:8080"),
        ("https://[2001:DB8::1]:8443", "https://[2001:db8::1]:8443"),
        ("*", "*"),
    ],
)
def test_origins_are_normalised_to_what_browsers_send(given: str, served: str) -> None:
    env = {"PULSE_SESSION_ORIGINS": given,
           "PULSE_SITES": f'[{{"name": "default", "origins": ["{given}", "{served}"]}}]'}
    settings = load_settings(env=env)
    assert settings.session.origins == (served,)
    assert settings.sites[0].origins == (served,)  # the duplicate it became is dropped
    assert SiteSettings("x", origins=(given,)).origins == (served,)  # built directly, too


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        ("portal.example", "scheme"),
        ("ftp://portal.example", "scheme"),
        ("https://", "no host"),
        ("https://portal.example/path", "no path"),
        ("https://portal.example?q=1", "no path"),
        ("https://user:pw@portal.example", "credentials"),
        ("https://user@portal.example", "credentials"),
        ("https://portal.example:99999", "Port out of range"),
    ],
)
def test_an_invalid_origin_is_a_config_error_naming_the_key(origin: str, why: str) -> None:
    with pytest.raises(ConfigError, match=rf"^sites\[0\]\.origins\[1\]: .*{why}"):
        load_settings(env={"PULSE_SITES": f'[{{"name": "default", "origins": ["https://ok.example", "{origin}"]}}]'})
    with pytest.raises(ConfigError, match=rf"^session\.origins\[0\]: .*{why}"):
        load_settings(env={"PULSE_SESSION_ORIGINS": f'["{origin}"]'})


@pytest.mark.parametrize(("key", "value"), [("counter", 0), ("counter", 65536), ("session", -1), ("session", 70000)])
def test_ports_are_bounded(key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}\.port: a port is 1\.\.65535, got {value}"):
        load_settings(env={f"PULSE_{key.upper()}_PORT": str(value)})
    assert load_settings(env={f"PULSE_{key.upper()}_PORT": "65535"})
    assert load_settings(env={f"PULSE_{key.upper()}_PORT": "1"})


def test_redis_url_port_is_bounded() -> None:
    with pytest.raises(ConfigError, match=r"^redis\.url: .*out of range"):
        load_settings(env={"PULSE_REDIS_URL": "redis://:hunter2@db.example:70000/0"})


def test_the_redis_repr_shows_every_field_but_the_password() -> None:
    assert repr(RedisSettings(url="redis://:hunter2@db.example:6379/0", cluster=True, replica_acks=1)) == (
        "RedisSettings(url='redis://:***@db.example:6379/0', cluster=True, command_timeout_seconds=1.0, "
        "connect_timeout_seconds=1.0, max_connections=64, replica_acks=1)")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@db.example:6379/0", "redis://:***@db.example:6379/0"),
        ("rediss://pulse:hunter2@db.example/1", "rediss://pulse:***@db.example/1"),
        ("redis://hunter2@db.example", "redis://***@db.example"),
        ("unix:///run/valkey.sock?db=0&password=hunter2", "unix:///run/valkey.sock?db=0&password=***"),
        ("redis://pulse:hunter2:x@db.example", "redis://pulse:***@db.example"),  # ':' in a password
        ("redis://:hunter2@x@db.example", "redis://:***@db.example"),  # '@' in a password
    ],
)
def test_redis_password_is_masked_in_repr_and_errors(url: str, shown: str) -> None:
    settings = RedisSettings(url=url)
    assert shown in repr(settings) and "hunter2" not in repr(settings)
    assert "hunter2" not in repr(Settings(redis=settings))
    assert masked_url(url) == shown
    with pytest.raises(ConfigError) as raised:
        RedisSettings(url=url.replace("redis", "http", 1).replace("unix", "http", 1)).validate("redis")
    assert "hunter2" not in str(raised.value) and "***" in str(raised.value)


def test_invalid_settings_never_reach_an_app() -> None:
    bad = Settings(counter=CounterSettings(port=0), session=SessionSettings(origins=("nope",)))
    with pytest.raises(ConfigError, match=r"^counter\.port"):
        create_counter(bad)
    with pytest.raises(ConfigError, match=r"^session\.origins\[0\]"):
        create_session(dataclasses.replace(bad, counter=CounterSettings()))


def test_an_unparsable_url_is_not_shown_at_all() -> None:
    assert masked_url("redis://:hunter2@[::1") == "<unparsable url>"


def test_secret_file_refusals_say_exactly_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("x" * 20, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"PULSE_SECRET_FILE": str(path), "PULSE_SECRET": "y" * 20})
    assert str(raised.value) == "secret_file: set either secret (PULSE_SECRET) or secret_file, not both"
    path.write_bytes(b"\xff\xfe not text " * 4)
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"PULSE_SECRET_FILE": str(path)})
    assert str(raised.value) == f"secret_file: {path} is not UTF-8 text"
    path.write_text("a" * 15 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"PULSE_SECRET_FILE": str(path)})
    assert str(raised.value) == f"secret_file: {path} holds fewer than 16 characters"
    path.write_text("a" * 16 + "\n", encoding="utf-8")  # 16 is enough
    secret = load_settings(env={"PULSE_SECRET_FILE": str(path)}).secret
    assert secret is not None and secret.reveal() == "a" * 16


def test_the_missing_secret_refusal_says_how_to_make_one() -> None:
    with pytest.raises(ConfigError) as raised:
        require_secret(load_settings(env={}))
    assert str(raised.value) == (
        "secret: required when the counter runs on its own: set PULSE_SECRET or secret_file"
        " (PULSE_SECRET_FILE) to a random value shared by every counter process, kept out of Redis"
        " (e.g. `openssl rand -hex 32`); only `portal-pulse up` creates one itself")
