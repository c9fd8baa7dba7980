#!/usr/bin/env bash
# Runs every Sluice test on a Debian machine: installs what is missing, checks formatting and
# lints, runs the Rust unit/integration tests and a short fuzzing run, starts the test brokers
# (tansu, RabbitMQ, moto) on 127.0.0.1, runs the end-to-end tests against them, and stops what
# it started again.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

scripts/install-deps.sh --test

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== UI unit tests"
(cd ui && npm test --silent)

echo "== Rust tests (includes the check that ui/src/bindings.ts is current)"
cargo build --workspace --all-targets --locked
cargo test --workspace --locked

echo "== fuzz smoke (cargo-fuzz, every target for 20 s; scripts/fuzz.sh long for the long run)"
scripts/fuzz.sh smoke

echo "== end-to-end tests (real brokers)"
scripts/brokers.sh start
trap 'scripts/brokers.sh stop' EXIT
# The fault-injection tests mostly wait (for timeouts to run out) on private brokers and
# proxies of their own, so two run side by side; the rest share brokers and timings and run
# one at a time.
python3 -m pytest tests/e2e/test_faults.py tests/e2e/test_faults_buses.py -q -p no:cacheprovider -n 2
# The buses whose tests share nothing but their own server: two files at a time.
SMALL=(tests/e2e/test_nats.py tests/e2e/test_nats_creds.py tests/e2e/test_mqtt.py tests/e2e/test_redis.py
  tests/e2e/test_redis_tls.py tests/e2e/test_http.py tests/e2e/test_across_buses.py tests/e2e/test_collector.py
  tests/e2e/test_postgres.py)
python3 -m pytest "${SMALL[@]}" -q -p no:cacheprovider -n 2 --dist loadfile
python3 -m pytest tests/e2e -q -p no:cacheprovider --ignore=tests/e2e/test_faults.py \
  --ignore=tests/e2e/test_faults_buses.py "${SMALL[@]/#/--ignore=}"
