#!/usr/bin/env bash
# Reproduces every figure in BENCHMARKS.md in one run on one broker, as ratios against raw
# librdkafka (sluice-bench) so a noisy shared machine still gives comparable numbers.
#   scripts/bench.sh [MESSAGES=1000000] [SEARCH_EVENTS=10000000]
#   scripts/bench.sh decode [REDECODE_EVENTS=1000000]   # only the decoding figures (no broker)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
scripts/install-deps.sh >/dev/null
cargo build --release --locked -p sluice -p sluice-bench >&2
S="$CARGO_TARGET_DIR/release/sluice"
B="$CARGO_TARGET_DIR/release/sluice-bench"

# Decoding, per core and in process: Sluice's decoder against prost-reflect's own
# DynamicMessage decode + serde serialization of the same messages (the baseline), then Avro
# and schemaless protobuf; then re-decoding a lake in place (events/s over the whole command).
decode_block() {
  local n=$1 w
  w=$(mktemp -d)
  echo "## decoding $(date -u +%FT%TZ), $(nproc) cores"
  "$B" decode 300000 | grep -v warm-up | sed 's/^/- /'
  SLUICE_CONFIG="$w/config" SLUICE_KEYRING=off "$S" connection add kafka bench --brokers 127.0.0.1:9 >/dev/null
  SLUICE_CONFIG="$w/config" "$S" schema add protos >/dev/null
  SLUICE_CONFIG="$w/config" "$S" schema map bench orders shop.v1.Order --no-redecode >/dev/null
  "$B" synth-lake "$w/lake" "$n" >/dev/null
  local a b
  a=$(date +%s%3N)
  SLUICE_CONFIG="$w/config" SLUICE_LAKE="$w/lake" "$S" schema redecode bench orders >"$w/out.txt"
  b=$(date +%s%3N)
  echo "- re-decode of $n events in the lake (whole command): $((b - a)) ms => $(( n * 1000 / (b - a) )) events/s; $(tail -1 "$w/out.txt")"
  rm -rf "$w"
}
if [ "${1:-}" = decode ]; then
  decode_block "${2:-1000000}"
  exit 0
fi
N="${1:-1000000}"
BIG="${2:-10000000}"
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
rate_of() { grep -o '"rate":[0-9]*' | cut -d: -f2; }
rc=(); for _ in 1 2 3; do rc+=("$($B consume "$BROKER" bench-src "$N" | rate_of)"); done
echo "- raw consume: median $(median3 "${rc[@]}") msg/s of (${rc[*]})"
rr=(); for _ in 1 2 3; do rr+=("$($B reader "$BROKER" bench-src "$N" | rate_of)"); done
echo "- sluice's Kafka reader alone (no decoding, no lake): median $(median3 "${rr[@]}") msg/s of (${rr[*]})"
# --max-messages, not --stop-at-end: tansu 0.6.0 under-reports high watermarks (see "Known limitations" in the README).
# Each capture runs 3 times into a fresh lake (disk writeback makes single runs noisy); median reported.
capture_runs() {  # CONFIG_DIR LABEL [CAPTURE_FLAGS...]
  local runs=() rss=() last config=$1 label=$2
  shift 2
  for i in 1 2 3; do
    last=$(SLUICE_CONFIG="$config" SLUICE_LAKE="$W/lake-$label-$i" /usr/bin/time -f '%M' -o "$W/rss" $S capture bench bench-src --max-messages "$N" --json "$@")
    runs+=("$(echo "$last" | tr -d '\n ' | grep -o '"elapsed_ms":[0-9]*' | cut -d: -f2)")
    rss+=("$(cat "$W/rss")")
  done
  local med; med=$(median3 "${runs[@]}")
  echo "- sluice capture ($label): median ${med} ms of (${runs[*]}) => $(( N * 1000 / med )) msg/s; peak RSS KiB (${rss[*]}); last: $(echo "$last" | tr -d '\n ')"
}
capture_runs "$SLUICE_CONFIG" "decoding on"
SLUICE_CONFIG="$W/config-raw" $S connection add kafka bench --brokers "$BROKER" >/dev/null
capture_runs "$W/config-raw" "unmapped, sniffing only"
capture_runs "$SLUICE_CONFIG" "no decoding, --no-decode" --no-decode
export SLUICE_LAKE="$W/lake-decoding on-1"
rp=(); for _ in 1 2 3; do
  a=$(ms); $S replay "" --to bench:bench-replayed >"$W/replay.txt"; rp+=("$(( N * 1000 / ($(ms) - a) ))")
done
echo "- sluice replay (wall time of the whole command): median $(median3 "${rp[@]}") msg/s of (${rp[*]}); last: $(cat "$W/replay.txt")"
pp=(); for _ in 1 2 3; do pp+=("$($B produce "$BROKER" bench-rawprod "$N" 2>/dev/null | rate_of)"); done
# The same bytes replay sends: the two provenance headers and the original timestamp added.
ph=(); for _ in 1 2 3; do ph+=("$($B produce "$BROKER" bench-rawprod "$N" replay-headers 2>/dev/null | rate_of)"); done
echo "- raw produce: median $(median3 "${pp[@]}") msg/s of (${pp[*]})"
echo "- raw produce with replay's headers and timestamps: median $(median3 "${ph[@]}") msg/s of (${ph[*]})"

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
decode_block 1000000
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
