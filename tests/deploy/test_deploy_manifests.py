"""Kubernetes manifests, the compose file, the image, the systemd units, the nginx
snippet and the Grafana provisioning: each validated by the best tool this machine has."""

from __future__ import annotations

import asyncio
import configparser
import json
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.deploy.artefacts import DEPLOY, ROOT, dashboard, dashboard_panels, load_yaml, tool, venv_tool

K8S = DEPLOY / "k8s"
#: kubernetes-validate ships schemas per release; the oldest release we support.
KUBERNETES_VERSION = "1.30.0"
SERVICES = {"counter": 8080, "session": 8081}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=90, cwd=cwd)


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name)
    return matches[0]


# --- Kubernetes ------------------------------------------------------------------------


def test_kubernetes_manifests_validate_strictly() -> None:
    files = sorted(str(p) for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    result = run(venv_tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout + result.stderr


def test_kubernetes_validation_catches_a_misspelt_field(tmp_path: Path) -> None:
    """Proves the validator is strict: an unknown field in a probe fails."""
    text = (K8S / "counter.yaml").read_text(encoding="utf-8").replace("periodSeconds: 5", "periodSecond: 5", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = run(venv_tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(bad))
    assert result.returncode != 0


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize(("service", "port"), SERVICES.items())
def test_deployment_is_probed_limited_and_unprivileged(service: str, port: int) -> None:
    name = f"portal-pulse-{service}"
    deployment = find("Deployment", name)
    pod = deployment["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"
    }
    spec = pod["spec"]
    assert spec["enableServiceLinks"] is False  # service links would inject PULSE_-like variables
    assert spec["securityContext"]["runAsNonRoot"] is True
    (container,) = spec["containers"]
    assert container["args"] == [service]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["PULSE_HOST"]["value"] == "0.0.0.0" and env["PULSE_PORT"]["value"] == str(port)
    assert env["PULSE_REDIS_URL"]["valueFrom"]["configMapKeyRef"]["name"] == "portal-pulse"
    token = "PULSE_ADMIN_TOKEN" if service == "counter" else "PULSE_SERVICE_TOKEN"
    assert env[token]["valueFrom"]["secretKeyRef"]["name"] == "portal-pulse-tokens"
    assert all(not e.get("value", "").startswith("change-me") for e in container["env"])
    assert find("Service", name)["spec"]["ports"][0]["port"] == port
    assert find("PodDisruptionBudget", name)["spec"]["minAvailable"] == 1
    hpa = find("HorizontalPodAutoscaler", name)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == name


def test_configmap_and_secret_hold_what_the_deployments_reference() -> None:
    configmap = find("ConfigMap", "portal-pulse")["data"]
    secret = find("Secret", "portal-pulse-tokens")["stringData"]
    for doc in k8s_documents():
        if doc["kind"] != "Deployment":
            continue
        for env in doc["spec"]["template"]["spec"]["containers"][0]["env"]:
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["key"] in configmap, env
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["key"] in secret, env


def test_configmap_config_file_loads_as_settings(tmp_path: Path) -> None:
    from portal_pulse.core.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text(find("ConfigMap", "portal-pulse")["data"]["config.toml"], encoding="utf-8")
    env = {"PULSE_REDIS_URL": find("ConfigMap", "portal-pulse")["data"]["redis-url"],
           "PULSE_COUNTER_TRUSTED_PROXIES": find("ConfigMap", "portal-pulse")["data"]["trusted-proxies"],
           "PULSE_ADMIN_TOKEN": "x" * 32, "PULSE_SECRET": "y" * 32, "PULSE_LOG_LEVEL": "INFO"}
    settings = load_settings(config, env)
    assert [site.name for site in settings.sites] == ["default"]


# --- compose ---------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification() -> None:
    """check-jsonschema vendors the Compose specification's schema (vendor.compose-spec)."""
    result = run(venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_validation_catches_a_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text((DEPLOY / "compose.yaml").read_text(encoding="utf-8").replace("healthcheck:", "healthchek:"),
                   encoding="utf-8")
    result = run(venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad))
    assert result.returncode != 0


def test_compose_wires_redis_services_prometheus_and_grafana() -> None:
    compose = load_yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"valkey", "counter", "session", "prometheus", "grafana"}
    command = services["valkey"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in services["valkey"]["volumes"])
    for name, port in SERVICES.items():
        env = services[name]["environment"]
        assert env["PULSE_REDIS_URL"] == "redis://valkey:6379/0" and env["PULSE_HOST"] == "0.0.0.0"
        assert env["PULSE_PORT"] == str(port) and services[name]["command"] == [name]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert targets["portal-pulse-counter"] == ["counter:8080"]
    assert targets["portal-pulse-session"] == ["session:8081"]


# --- image -----------------------------------------------------------------------------


def test_dockerfile_is_hadolint_clean() -> None:
    result = run(venv_tool("hadolint"), str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
    assert "pip install --no-cache-dir ." in text
    assert 'ENTRYPOINT ["portal-pulse"]' in text
    healthcheck = next(line for line in text.splitlines() if line.strip().startswith("CMD [\"python\""))
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck


# --- systemd ---------------------------------------------------------------------------


def unit(service: str) -> Path:
    return DEPLOY / "systemd" / f"portal-pulse-{service}.service"


@pytest.mark.parametrize(("service", "port"), SERVICES.items())
def test_systemd_unit_is_hardened(service: str, port: int) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit(service), encoding="utf-8")
    section = parser["Service"]
    assert section["ExecStart"] == f"/opt/portal-pulse/venv/bin/portal-pulse {service} --host 127.0.0.1 --port {port}"
    expected = {"DynamicUser": "yes", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                "EnvironmentFile": "/etc/portal-pulse/env", "Restart": "on-failure", "KillSignal": "SIGTERM"}
    for key, value in expected.items():
        assert section[key] == value, key
    assert section["TimeoutStopSec"]
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_units_verify(tmp_path: Path) -> None:
    """systemd-analyze verify, with ExecStart pointed at this checkout's own entry point
    (verify insists that the binary exists). Unknown keys only warn, so any output fails."""
    analyze = tool("systemd-analyze")
    entry = shutil.which("portal-pulse") or str(ROOT / ".venv" / "bin" / "portal-pulse")
    copies = []
    for service in SERVICES:
        copy = tmp_path / unit(service).name
        text = unit(service).read_text(encoding="utf-8")
        copy.write_text(text.replace("/opt/portal-pulse/venv/bin/portal-pulse", entry), encoding="utf-8")
        copies.append(str(copy))
    result = run(analyze, "verify", *copies)
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", result.stdout + result.stderr


# --- nginx -----------------------------------------------------------------------------


NGINX = DEPLOY / "nginx"


def test_nginx_snippet_shape() -> None:
    text = (NGINX / "portal-pulse.conf").read_text(encoding="utf-8")
    assert text.count("{") == text.count("}")
    assert "location ^~ /pulse/ {" in text and "location ^~ /pulse-session/ {" in text
    assert "proxy_set_header X-Forwarded-For" in text
    sse = text[text.index("/events$ {"):]
    sse = sse[: sse.index("}")]
    assert "proxy_buffering off;" in sse and "proxy_read_timeout 1h;" in sse
    for internal in ("location = /pulse/metrics {", "location ^~ /pulse/v1/admin/ {",
                     "location = /pulse-session/metrics {", "location = /pulse-session/v1/sessions {"):
        block = text[text.index(internal):]
        block = block[: block.index("}")]
        assert "deny all;" in block, internal
    upstreams = (NGINX / "portal-pulse-upstreams.conf").read_text(encoding="utf-8")
    assert "server 127.0.0.1:8080" in upstreams and "server 127.0.0.1:8081" in upstreams


def nginx_binary() -> str:
    """Debian's nginx (scripts/system-deps.sh installs it); missing, the test fails."""
    return tool("nginx", "/usr/sbin/nginx")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(tmp_path: Path, listen: str, counter_port: int, session_port: int) -> Path:
    upstreams = (NGINX / "portal-pulse-upstreams.conf").read_text(encoding="utf-8")
    upstreams = upstreams.replace("127.0.0.1:8080", f"127.0.0.1:{counter_port}")
    upstreams = upstreams.replace("127.0.0.1:8081", f"127.0.0.1:{session_port}")
    (tmp_path / "upstreams.conf").write_text(upstreams, encoding="utf-8")
    shutil.copy(NGINX / "portal-pulse.conf", tmp_path / "portal-pulse.conf")
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "\n".join(f"    {kind}_temp_path {tmp_path}/{kind};" for kind in kinds)
    config = tmp_path / "nginx.conf"
    config.write_text(
        f"""daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    # Portals often compress text; the SSE location must opt out or events wait in gzip.
    gzip on;
    gzip_min_length 1;
    gzip_types text/event-stream application/json;
{temp}
    include {tmp_path}/upstreams.conf;
    server {{
        listen {listen};
        include {tmp_path}/portal-pulse.conf;
    }}
}}
""",
        encoding="utf-8",
    )
    return config


def test_nginx_accepts_the_snippet(tmp_path: Path) -> None:
    binary = nginx_binary()
    config = nginx_config(tmp_path, f"127.0.0.1:{free_port()}", 1, 2)
    result = run(binary, "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(config))
    assert result.returncode == 0, result.stderr


def echo_app(name: str, release: asyncio.Event) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/events"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"data: first\n\n")
            await release.wait()  # the stream stays open until the test has read the event
            return response
        return web.json_response({"service": name, "path": request.path_qs,
                                  "xff": request.headers.get("X-Forwarded-For")})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[int, int, asyncio.Event]]:
    release = asyncio.Event()
    runners = []
    ports = []
    for name in SERVICES:
        runner = web.AppRunner(echo_app(name, release), shutdown_timeout=1)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        ports.append(port)
    yield ports[0], ports[1], release
    release.set()
    for runner in runners:
        await runner.cleanup()


async def test_nginx_routes_buffers_and_guards(tmp_path: Path, upstreams: tuple[int, int, asyncio.Event]) -> None:
    """nginx in front of two echo servers: prefixes are stripped, X-Forwarded-For is set,
    an event on the SSE route reaches the client while the stream is still open (with
    gzip on for the server, as portals often have), and internal paths refuse a
    non-local client. That buffering is off is checked by test_nginx_snippet_shape:
    nginx 1.22 passes a lone event through even with buffering on."""
    binary = nginx_binary()
    counter_port, session_port, release = upstreams
    port = free_port()
    config = nginx_config(tmp_path, f"127.0.0.1:{port}", counter_port, session_port)
    # Listen on 127.0.0.2 as well, so a client from that address is "outside".
    config.write_text(config.read_text(encoding="utf-8").replace(
        f"listen 127.0.0.1:{port};", f"listen 127.0.0.1:{port};\n        listen 127.0.0.2:{port};"), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        binary, "-e", "stderr", "-p", str(tmp_path), "-c", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/pulse/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
            async with http.post(f"{base}/pulse/v1/hit?stats=1", json={}) as response:
                body: dict[str, Any] = await response.json()
                assert body == {"service": "counter", "path": "/v1/hit?stats=1", "xff": "127.0.0.1"}
            async with http.get(f"{base}/pulse-session/v1/sessions/abc") as response:
                assert (await response.json())["path"] == "/v1/sessions/abc"
            async with http.get(f"{base}/pulse/metrics") as response:
                assert (await response.json())["path"] == "/metrics"
            async with http.get(f"{base}/pulse-session/v1/sessions/abc/events") as response:
                first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
                assert first == b"data: first\n\n"
                release.set()
        outside = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=outside, timeout=aiohttp.ClientTimeout(total=10)) as http:
            base = f"http://127.0.0.2:{port}"
            for path in ("/pulse/metrics", "/pulse/v1/admin/sites/default/baseline", "/pulse-session/metrics"):
                async with http.get(base + path) as response:
                    assert response.status == 403, path
            async with http.post(f"{base}/pulse-session/v1/sessions", json={}) as response:
                assert response.status == 403
            async with http.post(f"{base}/pulse/v1/hit", json={}) as response:
                assert (await response.json())["xff"] == "127.0.0.2"
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 10)


# --- Grafana ---------------------------------------------------------------------------


def test_dashboard_loads_and_every_panel_has_targets() -> None:
    board = dashboard()
    assert board["uid"] == "portal-pulse"
    panels = dashboard_panels()
    assert len(panels) >= 15
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}", panel["title"]
    text = json.dumps(board)
    for metric in ("pulse_ingest_hits_total", "pulse_ingest_online", "pulse_ingest_visits_total",
                   "pulse_http_request_duration_seconds_bucket", "pulse_ingest_commit_batch_size_bucket",
                   "pulse_ingest_commit_duration_seconds_bucket", "pulse_session_live",
                   "pulse_session_transitions_total", "pulse_session_scheduler_lag_seconds_bucket",
                   "pulse_session_event_streams", "pulse_redis_up"):
        assert metric in text, metric


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    grafana = DEPLOY / "grafana"
    datasource = load_yaml(grafana / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    provider = load_yaml(grafana / "provisioning" / "dashboards" / "dashboards.yml")["providers"][0]
    compose = load_yaml(DEPLOY / "compose.yaml")
    volumes = compose["services"]["grafana"]["volumes"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in volumes if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (grafana / "dashboards" / "portal-pulse.json").exists()
