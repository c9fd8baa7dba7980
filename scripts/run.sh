#!/usr/bin/env bash
# Installs what is missing, builds the `sluice` CLI (release) and runs it with the given
# arguments, e.g. `scripts/run.sh connection add kafka local --brokers 127.0.0.1:9092`.
# With no arguments it prints the CLI's help. The binary ends up at ~/.cache/sluice/bin/sluice.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install-deps.sh >&2
cargo build --release --locked -p sluice >&2
mkdir -p "$SLUICE_CACHE/bin"
cp "$CARGO_TARGET_DIR/release/sluice" "$SLUICE_CACHE/bin/sluice"
cp "$DUCKDB_LIB_DIR/libduckdb.so" "$SLUICE_CACHE/bin/"   # found through the $ORIGIN rpath
exec "$SLUICE_CACHE/bin/sluice" "${@:---help}"
