#!/usr/bin/env bash
# A/B of capture between two builds on the same 1M messages, alternating runs so machine noise
# hits both alike. Build each release `sluice` and copy it to /tmp/sluice-old and /tmp/sluice-new
# (and sluice-bench to /tmp/sluice-bench) first, e.g. with a git worktree of the old commit.
# Prints LABEL VERSION ELAPSED_MS and CPU seconds per run. Uses its own broker on 19093, like scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export SLUICE_KAFKA_PORT=19093
BROKER=127.0.0.1:19093
scripts/brokers.sh start >/dev/null 2>&1
trap 'scripts/brokers.sh stop >/dev/null 2>&1' EXIT
scripts/brokers.sh topic bench-ab 3 >/dev/null
N=1000000
/tmp/sluice-bench produce "$BROKER" bench-ab "$N" >/dev/null
W=$(mktemp -d)
for v in old new; do
  SLUICE_CONFIG="$W/c-$v" SLUICE_KEYRING=off /tmp/sluice-$v connection add kafka bench --brokers "$BROKER" >/dev/null
  SLUICE_CONFIG="$W/m-$v" SLUICE_KEYRING=off /tmp/sluice-$v connection add kafka bench --brokers "$BROKER" >/dev/null
  SLUICE_CONFIG="$W/m-$v" /tmp/sluice-$v schema add protos >/dev/null
  SLUICE_CONFIG="$W/m-$v" /tmp/sluice-$v schema map bench bench-ab shop.v1.Order --no-redecode >/dev/null
done
# CPU seconds (user+sys) beside the elapsed time: on a shared machine the wall clock of one run
# swung 2x while its CPU time moved by a tenth, so CPU time is the figure to compare.
run() { # VERSION CONFIG LABEL FLAGS
  local v=$1 c=$2 label=$3; shift 3
  local out cpu
  cpu=$( { TIMEFORMAT='%U %S'; time SLUICE_CONFIG="$W/$c-$v" SLUICE_LAKE="$W/lake-$RANDOM$RANDOM" /tmp/sluice-$v capture bench bench-ab --max-messages $N --json "$@" >"$W/out"; } 2>&1 | awk '{printf "%.2f", $1 + $2}')
  out=$(tr -d '\n ' <"$W/out" | grep -o '"elapsed_ms":[0-9]*' | cut -d: -f2)
  echo "$label $v ${out}ms cpu ${cpu}s"
}
for i in 1 2 3 4 5 6 7; do
  for v in old new; do run $v c no-decode --no-decode; done
  for v in new old; do run $v m decoding-on; done
done
rm -rf "$W"
