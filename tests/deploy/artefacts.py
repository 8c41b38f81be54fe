"""Where the deployment artefacts live, the external tools the deploy tests drive, and
the PromQL expressions found in the rules and the dashboard."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULE_FILES = (PROMETHEUS_DIR / "recording_rules.yml", PROMETHEUS_DIR / "alert_rules.yml")
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "portal-pulse.json"
JOBS = ("portal-pulse-counter", "portal-pulse-session")

#: Grafana's variables, replaced by values Prometheus accepts before a query is sent.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${site}": ".*",
    "$site": ".*",
}


def tool(name: str, *fallbacks: str) -> str:
    """The path of a required external binary; a missing one fails the test, never skips it."""
    found = shutil.which(name) or next((p for p in fallbacks if Path(p).exists()), None)
    if found is None:
        raise AssertionError(f"{name} is not installed (scripts/system-deps.sh installs it)")
    return found


def venv_tool(name: str) -> str:
    path = ROOT / ".venv" / "bin" / name
    return str(path) if path.exists() else tool(name)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(path: Path) -> list[dict[str, Any]]:
    doc = load_yaml(path)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules(PROMETHEUS_DIR / "alert_rules.yml") if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p.get("type") != "row"]


def expand_grafana(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    if "$" in re.sub(r"\{\{[^}]*\}\}", "", expr):
        raise AssertionError(f"unknown Grafana variable in {expr!r}")
    return expr


def all_expressions() -> dict[str, str]:
    """Every PromQL expression shipped, keyed by where it comes from."""
    found: dict[str, str] = {}
    for path in RULE_FILES:
        for rule in rules(path):
            found[f"{path.name}:{rule.get('record') or rule.get('alert')}"] = str(rule["expr"])
    for panel in dashboard_panels():
        for target in panel["targets"]:
            found[f"dashboard:{panel['title']}:{target['refId']}"] = expand_grafana(str(target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", str(query["query"]))
            assert match, f"dashboard variable {variable['name']}: unexpected query {query!r}"
            found[f"dashboard:variable:{variable['name']}"] = match.group(1)
    return found
