#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md in one run on one broker, as ratios against raw
# librdkafka (sluice-bench) so a noisy shared machine still gives comparable numbers.
#   scripts/bench.sh [MESSAGES=1000000] [SEARCH_EVENTS=10000000]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
N="${1:-1000000}"
BIG="${2:-10000000}"
scripts/install-deps.sh >/dev/null
cargo build --release --locked -p sluice -p sluice-bench >&2
S="$CARGO_TARGET_DIR/release/sluice"
B="$CARGO_TARGET_DIR/release/sluice-bench"
export SLUICE_KAFKA_PORT="${SLUICE_KAFKA_PORT:-19093}"   # a broker of its own, fresh for each run
BROKER="127.0.0.1:$SLUICE_KAFKA_PORT"
scripts/brokers.sh stop >/dev/null; scripts/brokers.sh start >&2
trap 'scripts/brokers.sh stop >/dev/null' EXIT
W=$(mktemp -d); export SLUICE_CONFIG="$W/config" SLUICE_LAKE="$W/lake" SLUICE_KEYRING=off
for t in src rawprod replayed; do scripts/brokers.sh topic "bench-$t" 3; done
$S connection add kafka bench --brokers "$BROKER" >/dev/null
$S schema add protos >/dev/null
$S schema map bench bench-src shop.v1.Order >/dev/null

ms() { date +%s%3N; }
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
timed() { local a b; a=$(ms); "$@" >/dev/null; b=$(ms); echo $((b - a)); }

echo "## run $(date -u +%FT%TZ), $(nproc) cores, N=$N" 
echo "- generate: $($B produce "$BROKER" bench-src "$N")"
raw_consume=$($B consume "$BROKER" bench-src "$N"); echo "- raw consume: $raw_consume"
# --max-messages, not --stop-at-end: tansu 0.6.0 under-reports high watermarks (see "Known limitations" in the README).
cap=$( { /usr/bin/time -f '%M' $S capture bench bench-src --max-messages "$N" --json 2>"$W/rss1" ; } ); echo "- sluice capture (decoding on): $(echo "$cap" | tr -d '\n ')"
echo "- capture peak RSS KiB: $(tail -1 "$W/rss1")"
cap2=$(SLUICE_CONFIG="$W/config-raw" SLUICE_LAKE="$W/lake-raw" sh -c "$S connection add kafka bench --brokers $BROKER >/dev/null && $S capture bench bench-src --max-messages $N --json")
echo "- sluice capture (unmapped, sniffing only): $(echo "$cap2" | tr -d '\n ')"
rep_start=$(ms); $S replay "" --to bench:bench-replayed >"$W/replay.txt"; rep_ms=$(( $(ms) - rep_start ))
echo "- sluice replay: $(cat "$W/replay.txt") (wall ${rep_ms} ms)"
raw_produce=$($B produce "$BROKER" bench-rawprod "$N"); echo "- raw produce: $raw_produce"

search_block() {
  local label=$1
  local f1=() f2=() f3=() f4=() f5=()
  for _ in 1 2 3; do
    f1+=("$(timed $S search 'customer.id = 4242' --limit 50)")
    f2+=("$(timed $S search '"payment declined"' --limit 50)")
    f3+=("$(timed $S search 'status = FAILED' --count)")
    f4+=("$(timed $S search 'status = FAILED' --limit 50)")
    f5+=("$(timed $S search 'Customer' --limit 50)")
  done
  echo "- search $label (median of 3, whole CLI process, ms): rare field equality (customer.id = 4242) $(median3 "${f1[@]}"); rare free text (\"payment declined\") $(median3 "${f2[@]}"); common field equality (status = FAILED) $(median3 "${f4[@]}"); common free text (Customer) $(median3 "${f5[@]}"); full count (status = FAILED --count) $(median3 "${f3[@]}")"
}
search_block "over $N captured events"
export SLUICE_LAKE="$W/lake-big"
echo "- $($B synth-lake "$SLUICE_LAKE" "$BIG")"
search_block "over $BIG synthetic events"
if [ "${BIG_CAPTURE:-1}" = 1 ]; then
  scripts/brokers.sh topic bench-big 3
  echo "- generate: $($B produce "$BROKER" bench-big "$BIG")"
  $S schema map bench bench-big shop.v1.Order >/dev/null
  export SLUICE_LAKE="$W/lake-big-capture"
  cap=$( { /usr/bin/time -f '%M' $S capture bench bench-big --max-messages "$BIG" --json 2>"$W/rss2" ; } )
  echo "- sluice capture of $BIG (decoding on): $(echo "$cap" | tr -d '\n ')"
  echo "- capture peak RSS KiB at $BIG: $(tail -1 "$W/rss2")"
fi
rm -rf "$W"
