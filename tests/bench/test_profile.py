"""Grouping py-spy's raw samples by owner (the benchmark's profile part)."""

from __future__ import annotations

from pathlib import Path

from bench.profile import Profile, render, summarise

RAW = """\
run (portal_pulse/core/runner.py:98);post_hit (portal_pulse/counter/h.py:57);digest (portal_pulse/core/k.py:32) 30
run (portal_pulse/core/runner.py:98);Runner.run (asyncio/runners.py:118) 20
run (portal_pulse/core/runner.py:98);RequestHandler.start (aiohttp/web_protocol.py:666) 40
<module> (portal_pulse/cli.py:92);post_hit (portal_pulse/counter/h.py:5);MutexValue.inc (prometheus_client/v.py:28) 10
"""


def test_samples_are_grouped_by_the_innermost_frame(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    profile = summarise("counter hit", 1000.0, raw)
    assert profile.samples == 100
    assert profile.by_category == {
        "aiohttp": 40.0, "service code (portal_pulse/)": 30.0, "event loop (asyncio, uvloop)": 20.0,
        "prometheus-client": 10.0,
    }
    # every stack above starts in the service's runner or CLI
    assert profile.through_service_code == 100.0
    assert profile.top_self[0] == ("RequestHandler.start (aiohttp/web_protocol.py:666)", 40.0)


def test_the_report_has_a_column_per_target(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(RAW)
    table = render([summarise("a", 1.0, raw), Profile("b", 2.0, 0)])
    assert table.splitlines()[0].endswith("| a | b |")
    assert "| aiohttp | 40% | 0% |" in table
