#!/usr/bin/env bash
# Installs what is missing, builds Sluice (release) and runs it.
#   scripts/run.sh            opens the desktop app (the lake in its default place)
#   scripts/run.sh ARGS...    runs the `sluice` CLI, e.g. `scripts/run.sh serve`
# The binaries end up in ~/.cache/sluice/bin/ with libduckdb.so beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install-deps.sh >&2
mkdir -p "$SLUICE_CACHE/bin"
cp "$DUCKDB_LIB_DIR/libduckdb.so" "$SLUICE_CACHE/bin/"   # found through the $ORIGIN rpath
if [ $# -eq 0 ]; then
  cargo build --release --locked -p sluice-app >&2
  cp "$CARGO_TARGET_DIR/release/sluice-app" "$SLUICE_CACHE/bin/sluice-app"
  exec "$SLUICE_CACHE/bin/sluice-app"
fi
cargo build --release --locked -p sluice >&2
cp "$CARGO_TARGET_DIR/release/sluice" "$SLUICE_CACHE/bin/sluice"
exec "$SLUICE_CACHE/bin/sluice" "$@"
