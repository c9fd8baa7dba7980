#!/usr/bin/env bash
# Reproduces the UI figures in BENCHMARKS.md: a synthetic lake of EVENTS (default 1M), served
# by `sluice serve`, measured through the API and in headless Chromium, then opened in the
# desktop app (release build, under Xvfb) unless DESKTOP=0.
#   scripts/bench-ui.sh [EVENTS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
N="${1:-1000000}"
scripts/install-deps.sh --test >/dev/null
APP=""; [ "${DESKTOP:-1}" = 1 ] && APP="-p sluice-app"
cargo build --release --locked -p sluice -p sluice-bench $APP >&2
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
echo "## UI run $(date -u +%FT%TZ), $(nproc) cores, $N events"
echo "- $("$CARGO_TARGET_DIR/release/sluice-bench" synth-lake "$W/lake" "$N")"
python3 tests/bench/ui.py "$CARGO_TARGET_DIR/release/sluice" "$W/lake"
if [ -n "$APP" ]; then
  python3 tests/bench/desktop.py "$CARGO_TARGET_DIR/release/sluice-app" "$W/lake"
fi
