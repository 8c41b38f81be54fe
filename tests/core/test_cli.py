from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portal_pulse.cli import build_parser, main, settings_from_args
from portal_pulse.up import embedded_secret


def test_every_option_has_an_environment_variable() -> None:
    env = {"PULSE_REDIS_URL": "redis://env:1/0", "PULSE_PORT": "9999", "PULSE_HOST": "0.0.0.0"}
    args = build_parser(env).parse_args(["counter"])
    settings = settings_from_args(args, env, "counter")
    assert settings.redis.url == "redis://env:1/0"
    assert (settings.counter.host, settings.counter.port) == ("0.0.0.0", 9999)
    args = build_parser(env).parse_args(["session", "--port", "7000", "--redis-url", "redis://cli:2/0"])
    settings = settings_from_args(args, env, "session")
    assert (settings.session.port, settings.redis.url) == (7000, "redis://cli:2/0")


def test_workers_from_the_command_line_or_its_environment() -> None:
    env = {"PULSE_WORKERS": "2", "PULSE_METRICS_PORT": "9100"}
    settings = settings_from_args(build_parser(env).parse_args(["counter"]), env, "counter")
    assert (settings.counter.workers, settings.counter.metrics_port) == (2, 9100)
    args = build_parser({}).parse_args(["session", "--workers", "3", "--metrics-port", "9200"])
    settings = settings_from_args(args, {}, "session")
    assert (settings.session.workers, settings.session.metrics_port) == (3, 9200)
    assert settings.counter.workers == 1


def test_tokens_are_not_command_line_options() -> None:
    with pytest.raises(SystemExit):
        build_parser({}).parse_args(["counter", "--admin-token", "x"])


def test_configuration_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["counter", "--redis-url", "nonsense"], env={}) == 2
    assert "redis.url" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["up"], ["counter"], ["session"]])
def test_help(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portal_pulse.cli", *command, "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: portal-pulse" in result.stdout


def test_the_counter_refuses_to_start_without_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["counter", "--redis-url", "redis://127.0.0.1:1/0"], env={}) == 2
    err = capsys.readouterr().err
    assert "secret: required" in err and "PULSE_SECRET" in err and "secret_file" in err


def test_the_embedded_default_keeps_its_secret_under_the_data_folder(tmp_path: Path) -> None:
    first = embedded_secret(tmp_path / "data")
    path = tmp_path / "data" / "pulse-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.reveal()) == 64
    assert embedded_secret(tmp_path / "data") == first  # created once, read afterwards
