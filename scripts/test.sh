#!/usr/bin/env bash
# Runs every Sluice test on a Debian machine: installs what is missing, checks formatting and
# lints, runs the Rust unit/integration tests, starts a real Kafka-API broker (tansu) on
# 127.0.0.1, runs the end-to-end tests against it, and stops the broker again.
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

echo "== end-to-end tests (real broker)"
scripts/brokers.sh start
trap 'scripts/brokers.sh stop' EXIT
python3 -m pytest tests/e2e -q -p no:cacheprovider
