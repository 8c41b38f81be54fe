"""The statistics settings: defaults, validation naming the key, the per-site read token."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal_pulse.core.secret import Secret
from portal_pulse.core.settings import ConfigError, load_settings


def test_statistics_defaults() -> None:
    settings = load_settings(env={})
    assert settings.counter.statistics_enabled is True
    assert settings.counter.top_entries == 100
    assert settings.counter.user_agent_cache_size == 4096
    assert settings.sites[0].stats_token is None


@pytest.mark.parametrize(("value", "message"), [("0", "must be > 0"), ("10001", "at most 10000"), ("x", "number")])
def test_top_entries_is_validated(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"counter\.top_entries: .*{message}"):
        load_settings(env={"PULSE_COUNTER_TOP_ENTRIES": value})


def test_stats_token_from_the_file_is_masked(tmp_path: Path) -> None:
    config = tmp_path / "pulse.toml"
    config.write_text('[[sites]]\nname = "default"\nstats_token = "read-123"\n', encoding="utf-8")
    site = load_settings(config, env={}).sites[0]
    assert site.stats_token == Secret("read-123")
    assert "read-123" not in repr(site)


def test_empty_stats_token_means_public() -> None:
    settings = load_settings(env={"PULSE_SITES": '[{"name": "a", "stats_token": ""}]'})
    assert settings.sites[0].stats_token is None
