#!/usr/bin/env bash
# Install the Debian packages the test suite (or, with "bench", the benchmarks) needs, only
# when they are missing: chromium, prometheus + promtool, redis-server (compatibility run),
# nginx (only to check the deploy/nginx snippet with nginx -t), npm (for axe-core, below). Runs as
# root on CI.
set -euo pipefail
want=(chromium:chromium prometheus:prometheus promtool:prometheus redis-server:redis-server nginx:nginx
      npm:npm)
if [[ "${1:-}" == "bench" ]]; then want+=(wrk:wrk); fi
missing=()
for entry in "${want[@]}"; do
  cmd="${entry%%:*}"; pkg="${entry##*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian prometheus package starts a system service on :9090; the tests run their
# own on free ports, so leave any system one alone but never depend on it.
# axe-core (the accessibility checker the browser tests run in the page), pinned by
# tests/.node/package-lock.json, installed into tests/.node/node_modules (git-ignored).
cd "$(dirname "$0")/.."
if [[ ! -f tests/.node/node_modules/axe-core/axe.min.js ]]; then
  npm ci --prefix tests/.node --no-audit --no-fund --silent
fi
