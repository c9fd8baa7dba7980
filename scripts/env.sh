# Sourced by the project's scripts: where builds and downloads live, outside the clone so later runs reuse them.
export SLUICE_CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLUICE_CACHE/target}"
export DUCKDB_LIB_DIR="${DUCKDB_LIB_DIR:-$SLUICE_CACHE/duckdb}"
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
# Node 20 from the npm registry when the system's is older (scripts/install-deps.sh puts it here).
if [ -x "$SLUICE_CACHE/node/node_modules/.bin/node" ]; then export PATH="$SLUICE_CACHE/node/node_modules/.bin:$PATH"; fi
