#!/usr/bin/env bash
# Change-data capture speed (BENCHMARKS.md, "PostgreSQL change data"): changes per second that
# `sluice capture --tables` turns into stored events, against a raw pgoutput reader (the same
# replication client, sluice-bench cdc-raw, counting change messages and decoding nothing) of
# the same changes from a slot of its own, in the same run. Both slots are made before the
# changes, so both read the same WAL; COUNT rows go in through one INSERT ... SELECT per
# 10,000 rows.
#
# Uses the private cluster of scripts/brokers.sh (127.0.0.1:15432; `scripts/brokers.sh start`
# if it is down) and drops what it made. Build first:
#   . scripts/env.sh; cargo build --release -p sluice-bench -p sluice
# COUNT and RUNS can be set from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
BIN=$CARGO_TARGET_DIR/release
S=$BIN/sluice
R=$BIN/sluice-bench
PORT=${SLUICE_POSTGRES_PORT:-15432}
COUNT=${COUNT:-200000}
RUNS=${RUNS:-3}
(echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || scripts/brokers.sh start >/dev/null
W=$(mktemp -d)
DB=bench_cdc_$$
P() { psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
  P -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$DB'" >/dev/null 2>&1 || true
  P -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
export SLUICE_KEYRING=off SLUICE_CONFIG=$W/config
P -d postgres -c "CREATE DATABASE $DB"
P -d "$DB" -c "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, status text, amount numeric(12,2), created timestamptz, note text)"
P -d "$DB" -c "CREATE PUBLICATION raw FOR TABLE orders"
$S connection add postgres pg --url "postgres://postgres@127.0.0.1:$PORT/$DB" >/dev/null
echo "# $(date -u +%FT%TZ) COUNT=$COUNT RUNS=$RUNS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
base=0
for run in $(seq "$RUNS"); do
  rm -rf "$W/lake"
  P -d "$DB" -c "SELECT pg_create_logical_replication_slot('raw_$run', 'pgoutput')" >/dev/null
  # Sluice's own slot, made (and its publication) by a capture that stops at once.
  SLUICE_LAKE=$W/lake $S capture pg --tables orders --create-slot --duration 1s >/dev/null 2>&1
  for chunk in $(seq 0 $(( (COUNT - 1) / 10000 ))); do
    lo=$((base + chunk * 10000 + 1)); hi=$((base + (chunk + 1) * 10000)); [ $hi -gt $((base + COUNT)) ] && hi=$((base + COUNT))
    P -d "$DB" -c "INSERT INTO orders SELECT g, g % 1000, (ARRAY['PAID','FAILED','NEW'])[1 + g % 3], g / 100.0, now(), 'order ' || g FROM generate_series($lo, $hi) g"
  done
  base=$((base + COUNT))
  "$R" cdc-raw 127.0.0.1 "$PORT" "$DB" "raw_$run" raw "$COUNT" | sed "s/}$/,\"run\":$run}/"
  start=$(date +%s.%N)
  SLUICE_LAKE=$W/lake $S capture pg --tables orders --max-messages "$COUNT" --json >"$W/sluice.json" 2>/dev/null
  end=$(date +%s.%N)
  python3 - "$W/sluice.json" "$start" "$end" "$run" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
secs = float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"op": "cdc-sluice", "run": int(sys.argv[4]), "count": p["captured"], "seconds": round(secs, 3),
                  "rate": round(p["captured"] / secs), "capture_rate": round(p["read"] * 1000 / max(p["elapsed_ms"], 1))}))
PY
  P -d "$DB" -c "SELECT pg_drop_replication_slot('raw_$run')" >/dev/null
  SLUICE_LAKE=$W/lake $S capture pg --tables orders --drop-slot --duration 1s >/dev/null 2>&1
done
