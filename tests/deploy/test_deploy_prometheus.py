"""The Prometheus configuration, the recording rules and the alerts, checked by promtool,
and the alerts' own unit tests (deploy/prometheus/tests) run by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.artefacts import JOBS, PROMETHEUS_DIR, RULE_FILES, alerts, load_yaml, rules, tool

SEVERITIES = {"critical", "warning", "info"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool", "/usr/bin/promtool"), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"promtool failed:\n{result.stdout}\n{result.stderr}"


def copy_with_rules(config: dict[str, Any], tmp_path: Path) -> Path:
    """Write ``config`` into tmp_path with its rule files resolved to absolute copies."""
    resolved = []
    for name in config.get("rule_files", []):
        target = tmp_path / Path(name).name
        shutil.copy(PROMETHEUS_DIR / name, target)
        resolved.append(str(target))
    config["rule_files"] = resolved
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_promtool_check_config(tmp_path: Path) -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    assert {job["job_name"] for job in config["scrape_configs"]} >= set(JOBS)
    assert config["global"]["scrape_interval"] == "15s"
    result = promtool("check", "config", str(copy_with_rules(config, tmp_path)))
    assert_ok(result)
    assert "2 rule files found" in result.stdout


def test_promtool_check_kubernetes_config(tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes discovery, so promtool checks the
    file with static targets in its place; relabelling and rules are checked as written."""
    config = load_yaml(PROMETHEUS_DIR / "kubernetes.yml")
    assert [job["job_name"] for job in config["scrape_configs"]] == list(JOBS)
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod", "namespaces": {"names": ["portal-pulse"]}}]
        job["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
        kept = [r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"]
        assert job["job_name"] in kept and "true" in kept
    assert_ok(promtool("check", "config", str(copy_with_rules(config, tmp_path))))


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert_ok(result)
    assert "SUCCESS" in result.stdout


def test_promtool_lints_rules_clean() -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", *map(str, RULE_FILES))
    assert_ok(result)


def test_promtool_test_rules() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool rule tests"
    result = promtool("test", "rules", *map(str, tests))
    assert_ok(result)
    assert result.stdout.count("SUCCESS") == len(tests)


def test_every_alert_is_described_and_graded() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in alerts():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook"}, rule["alert"]
        assert annotations["runbook"] == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]


def test_every_alert_has_a_runbook_section() -> None:
    doc = (PROMETHEUS_DIR.parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    for rule in alerts():
        assert f"### {rule['alert']}\n" in doc, f"docs/operations.md has no runbook for {rule['alert']}"


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in (PROMETHEUS_DIR / "tests").glob("*.yml"):
        doc = load_yaml(path)
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested silent"
    assert (firing | silent) - names == set(), "tests name alerts that do not exist"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_select_only_fixed_label_sets(path: Path) -> None:
    """Aggregations never group by a label that could hold a path, visitor or session."""
    for rule in rules(path):
        expr = str(rule["expr"])
        for banned in ("path", "visitor", "session_id", "ip"):
            assert f"by ({banned}" not in expr and f", {banned})" not in expr, (rule, banned)
