#!/usr/bin/env bash
# Collector speed (BENCHMARKS.md, "Collectors"): events per second that `sluice collect`
# stores durably and acknowledges, over HTTP with one event per request and with 1,000 per
# request (wrk, keep-alive connections), and over gRPC streams (sluice-bench collect-grpc).
# Beside each HTTP figure, in the same run: wrk against the same collector's 404 path, which
# answers after the token check and stores nothing (what the HTTP stack alone costs here).
# Every run then checks that the lake holds exactly the events acknowledged.
#
# wrk, the collector and the gRPC client share the machine's cores: the figures are what one
# machine does with both ends on it. Build first:
#   . scripts/env.sh; cargo build --release -p sluice-bench -p sluice
# Rates are events acknowledged per second (2xx only). DURATION (seconds per HTTP run), CONNS
# and BCONNS (wrk connections for single events and for batches), NG (gRPC events), STREAMS and
# RUNS can be set from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
BIN=$CARGO_TARGET_DIR/release
S=$BIN/sluice
R=$BIN/sluice-bench
DURATION=${DURATION:-10}
CONNS=${CONNS:-256}
# Batches of 1,000 from fewer connections: 256 of them would hold 256,000 events in flight,
# past the collector's 100,000, and be refused (429) by design.
BCONNS=${BCONNS:-32}
NG=${NG:-500000}
STREAMS=${STREAMS:-8}
RUNS=${RUNS:-3}
command -v wrk >/dev/null || { echo "the HTTP load needs wrk: apt-get install wrk" >&2; exit 1; }

W=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
export SLUICE_KEYRING=off SLUICE_CONFIG=$W/config SLUICE_PROTOS=protos

# One order, as the other benchmarks' JSON payloads (~200 bytes), and 1,000 of them as NDJSON.
ORDER='{"id":"order-00000042-2026-11-20","customer":{"id":332598,"name":"Customer Number 42","email":"customer42@example.com"},"amountCents":1042,"status":"FAILED","createdAt":"2026-11-20T10:00:00Z"}'
for _ in $(seq 1000); do echo "$ORDER"; done > "$W/batch.ndjson"
cat > "$W/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = os.getenv("CTYPE")
local f = io.open(os.getenv("BODY"), "rb"); wrk.body = f:read("*a"); f:close()
LUA
printf '%s' "$ORDER" > "$W/one.json"

start() {
  rm -rf "$W/lake"
  SLUICE_LAKE=$W/lake "$S" collect --name bench --http 127.0.0.1:0 --grpc 127.0.0.1:0 >"$W/out" 2>"$W/err" &
  PID=$!
  for _ in $(seq 100); do grep -q '^  token' "$W/err" && break; sleep 0.1; done
  HTTP=$(awk '$1 == "http" {print $3}' "$W/err" | sed 's/{source}//')
  GRPC=$(awk '$1 == "grpc" {print $2}' "$W/err")
  TOKEN=$(awk '$1 == "token" {print $2}' "$W/err")
  export TOKEN
}
stop() { kill -INT "$PID"; wait "$PID" || true; PID=; }
stored() { SLUICE_LAKE=$W/lake "$S" sql "select count(*) from events" --format json | tr -dc '0-9'; }
# wrk's requests per second, and its count of non-2xx answers.
wrk_run() {
  BODY=$1 CTYPE=$2 wrk -t2 -c"${4:-$CONNS}" -d"${DURATION}s" -s "$W/post.lua" "$3" >"$W/wrk" 2>&1
  rps=$(awk '/Requests\/sec/ {print $2}' "$W/wrk")
  total=$(awk '/requests in/ {print $1}' "$W/wrk")
  bad=$(awk '/Non-2xx/ {print $NF}' "$W/wrk"); bad=${bad:-0}
}

echo "# $(date -u +%FT%TZ) DURATION=${DURATION}s CONNS=$CONNS BCONNS=$BCONNS NG=$NG STREAMS=$STREAMS RUNS=$RUNS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
  start
  wrk_run "$W/one.json" application/json "${HTTP%/v1/events/}/nothing-here"
  echo "{\"op\":\"http-404-baseline\",\"run\":$run,\"rate\":$rps}"
  wrk_run "$W/one.json" application/json "${HTTP}bench"
  ok=$((total - bad)); n=$(stored)
  echo "{\"op\":\"http-one-per-request\",\"run\":$run,\"rate\":$((ok / DURATION)),\"acknowledged\":$ok,\"stored\":$n,\"refused\":$bad}"
  stop; start
  wrk_run "$W/batch.ndjson" application/x-ndjson "${HTTP}bench" "$BCONNS"
  ok=$(( (total - bad) * 1000 )); n=$(stored)
  echo "{\"op\":\"http-batches-of-1000\",\"run\":$run,\"rate\":$((ok / DURATION)),\"acknowledged\":$ok,\"stored\":$n,\"refused\":$bad}"
  stop; start
  g=$("$R" collect-grpc "$GRPC" "$TOKEN" "$NG" "$STREAMS")
  n=$(stored)
  echo "${g%\}},\"run\":$run,\"stored\":$n}"
  stop
done
