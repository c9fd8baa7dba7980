#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the filter language, schema loading and
# every payload decoder. The fuzz project is fuzz/ (its own workspace); builds, working corpora,
# findings and logs live in $SLUICE_CACHE, outside the clone.
#
#   scripts/fuzz.sh smoke              every target for $FUZZ_SMOKE_SECONDS (20) each: CI's run
#   scripts/fuzz.sh long [SECONDS]     every target for SECONDS (300) each, then a summary
#   scripts/fuzz.sh run TARGET [SECONDS] [LIBFUZZER ARGS...]
#   scripts/fuzz.sh replay TARGET FILE
#   scripts/fuzz.sh list
#
# Exits non-zero when any target finds a crash, a timeout (>10 s for one input) or an input
# that takes more than 2 GiB; the input is saved under $SLUICE_CACHE/fuzz-artifacts/TARGET/ and
# `scripts/fuzz.sh replay TARGET FILE` runs it again with the stack trace.
#
# Stable toolchain: the sanitizers need nightly's -Z flags, so targets are built with
# `--sanitizer none` (coverage instrumentation, debug assertions and overflow checks on, which
# is what finds panics, overflows and unbounded recursion in Rust code). FUZZ_SANITIZER=address
# builds with AddressSanitizer through RUSTC_BOOTSTRAP=1 for the C code underneath (zstd); it
# works on stable but runs about 25 times slower.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

CARGO_FUZZ_VERSION=0.13.2
SANITIZER="${FUZZ_SANITIZER:-none}"
CORPUS="$SLUICE_CACHE/fuzz-corpus"
ARTIFACTS="$SLUICE_CACHE/fuzz-artifacts"
LOGS="$SLUICE_CACHE/fuzz-logs"
# One target dir per sanitizer: their flags differ, and sharing one would rebuild everything on
# each switch (an AddressSanitizer build took 18 minutes here).
export CARGO_TARGET_DIR="$SLUICE_CACHE/fuzz-target"
if [ "$SANITIZER" != none ]; then
  export CARGO_TARGET_DIR="$SLUICE_CACHE/fuzz-target-$SANITIZER" RUSTC_BOOTSTRAP=1
fi

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sluice-fuzz$'; }

ensure_cargo_fuzz() {
  if cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then return; fi
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
}

build() {
  ensure_cargo_fuzz
  (cd fuzz && cargo fuzz build --sanitizer "$SANITIZER" "$@")
}

# run_one TARGET SECONDS [ARGS...]: prints "TARGET EXECS EXEC/S CORPUS STATUS", returns non-zero
# on a finding.
run_one() {
  local t="$1" secs="$2"; shift 2
  mkdir -p "$CORPUS/$t" "$ARTIFACTS/$t" "$LOGS"
  local log="$LOGS/$t.log" rc=0
  local extra=() seeds=("seeds/$t")
  if [ "$t" = filter ]; then extra+=(-max_len=8192); fi
  # The project's own .proto files seed the .proto parser where they are, not as copies.
  if [ "$t" = proto_source ]; then seeds+=(../protos/shop/v1 ../tests/protos/kinds/v1); fi
  # The first corpus folder collects what the fuzzer learns; the seeds are read only.
  (cd fuzz && cargo fuzz run --sanitizer "$SANITIZER" "$t" "$CORPUS/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$t/" "${extra[@]}" "$@") >"$log" 2>&1 || rc=$?
  local execs rate corpus
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$CORPUS/$t" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    printf '%-16s %12s %9s %7s  ok\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus"
  else
    printf '%-16s %12s %9s %7s  FINDING (exit %s): see %s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$rc" "$log"
    grep -E "panicked at|overflowed|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -8 | sed 's/^/    /'
  fi
  return "$rc"
}

run_all() {
  local secs="$1" failed=0
  build
  printf '%-16s %12s %9s %7s  %s\n' target executions exec/s corpus result
  for t in $(targets); do
    run_one "$t" "$secs" || failed=1
  done
  return "$failed"
}

case "${1:-}" in
  smoke) run_all "${FUZZ_SMOKE_SECONDS:-20}" ;;
  long) run_all "${2:-300}" ;;
  run)
    t="${2:?usage: scripts/fuzz.sh run TARGET [SECONDS] [LIBFUZZER ARGS...]}"
    secs="${3:-60}"
    shift $(( $# < 3 ? $# : 3 ))
    build "$t"
    run_one "$t" "$secs" "$@"
    ;;
  replay)
    t="${2:?usage: scripts/fuzz.sh replay TARGET FILE}"
    f="$(realpath "${3:?usage: scripts/fuzz.sh replay TARGET FILE}")"
    build "$t"
    (cd fuzz && cargo fuzz run --sanitizer "$SANITIZER" "$t" "$f")
    ;;
  list) targets ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
