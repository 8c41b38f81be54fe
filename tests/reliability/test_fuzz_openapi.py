"""Property-based fuzzing of every operation of both services' OpenAPI documents with
Schemathesis, against a live service process: no 5xx, and every answer conforms to the
document (status code, content type, headers, body schema).

Bounded and reproducible: a fixed seed, deterministic generation, ~30 cases per operation
and phase, one worker. The bearer tokens are supplied so protected operations are fuzzed
past 401, and real site names and session ids are fed in (as Schemathesis dictionaries)
so the fuzzer reaches the logic behind 404s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, SERVICE_TOKEN
from tests.reliability.procs import Cluster, ServiceProcess

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
SITES_CONFIG = """
[dictionaries.sites]
values = ["default", "news"]

[parameters]
"query.site" = { dictionary = "sites", probability = 0.8 }
"path.site" = { dictionary = "sites", probability = 0.8 }
"body.site" = { dictionary = "sites", probability = 0.8 }
"""


def fuzz(proc: ServiceProcess, token: str, config: str, workdir: Path, *extra: str) -> None:
    """Run Schemathesis against ``proc``; fail with its report unless every check held."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "schemathesis.toml"
    # no crash cache: nothing is written outside the test's own directory
    config_file.write_text("max-stream-events = 1\n\n[cache]\nenabled = false\n" + config, encoding="utf-8")
    command = [
        str(SCHEMATHESIS), "--config-file", str(config_file), "run", f"{proc.url}/openapi.json",
        "--checks", CHECKS, "--max-examples", "30", "--seed", "20261126", "--generation-deterministic",
        "--no-shrink", "--workers", "1", "--request-timeout", "5",
        "--header", f"Authorization: Bearer {token}", "--no-color", *extra,
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=100, check=False)
    report = result.stdout[-15000:] + result.stderr[-3000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{report}"
    assert "generated" in result.stdout, report
    assert proc.running(), proc.log()[-3000:]
    assert "Traceback" not in proc.log(), proc.log()[-5000:]


def _create_sessions(proc: ServiceProcess, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        call = urllib.request.Request(
            f"{proc.url}/v1/sessions", data=json.dumps({"idle_timeout": 600, "subject": "fuzz"}).encode(),
            method="POST", headers={"Authorization": f"Bearer {SERVICE_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(call, timeout=5) as response:
            ids.append(json.loads(response.read())["id"])
    return ids


@pytest.mark.slow
def test_counter_conforms_to_its_openapi_document(shared: Cluster, tmp_path: Path) -> None:
    counter = shared.service("counter")
    fuzz(counter, ADMIN_TOKEN, SITES_CONFIG, tmp_path / "fuzz")


def _session_config(ids: list[str]) -> str:
    return (
        f"[dictionaries.sessions]\nvalues = {json.dumps(ids)}\n\n"
        '[parameters]\n"path.id" = { dictionary = "sessions", probability = 0.8 }\n'
    )


@pytest.mark.slow
def test_session_conforms_to_its_openapi_document(shared: Cluster, tmp_path: Path) -> None:
    """Every operation, the event stream included (one event read per stream); the
    stateful phase follows the document's links from a created session to the others."""
    session = shared.service("session")
    ids = _create_sessions(session, 10)
    fuzz(session, SERVICE_TOKEN, _session_config(ids), tmp_path / "fuzz")
