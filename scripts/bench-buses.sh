#!/usr/bin/env bash
# Capture and replay speed on NATS JetStream, MQTT (QoS 0 and 1), Redis Streams and HTTP, each
# as a ratio against a raw client of the same crate (sluice-bench, crates/bench/src/buses.rs)
# on the same server in the same run. Raw and Sluice runs alternate RUNS times (the machine is
# shared: noise should hit both alike) and the medians are printed at the end, wall time and
# CPU seconds (user+sys of the whole process) both.
#
# Uses the private test servers (NATS 14222, MQTT 11883, Redis 16379; `scripts/brokers.sh
# start` if one is down) and leaves nothing on them. Build first:
#   . scripts/env.sh; cargo build --release -p sluice-bench -p sluice
# N (JetStream, Redis), NM (MQTT), NH (HTTP) and RUNS can be set from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
BIN=$CARGO_TARGET_DIR/release
S=$BIN/sluice
R=$BIN/sluice-bench
N=${N:-200000}
NM=${NM:-100000}
# MQTT captures are fed at this rate: mosquitto drops what a subscriber cannot take.
MRATE=${MRATE:-20000}
NH=${NH:-20000}
RUNS=${RUNS:-3}
NATS=nats://127.0.0.1:${SLUICE_NATS_PORT:-14222}
MQTT=mqtt://127.0.0.1:${SLUICE_MQTT_PORT:-11883}
RPORT=${SLUICE_REDIS_PORT:-16379}
REDIS=redis://127.0.0.1:$RPORT/0

command -v wrk >/dev/null || { echo "the HTTP baseline needs wrk: apt-get install wrk" >&2; exit 1; }
up() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! up "${SLUICE_NATS_PORT:-14222}" || ! up "${SLUICE_MQTT_PORT:-11883}" || ! up "$RPORT"; then
  scripts/brokers.sh start >/dev/null
fi

W=$(mktemp -d)
ID=b$(date +%s)$$
HTTP_PID=
cleanup() {
  [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null || true
  "$R" nats-delete "$NATS" "${ID}_in" >/dev/null 2>&1 || true
  redis-cli -p "$RPORT" del "$ID:in" >/dev/null 2>&1 || true
  rm -rf "$W"
}
trap cleanup EXIT
export SLUICE_KEYRING=off SLUICE_CONFIG=$W/config SLUICE_PROTOS=protos
$S connection add nats nb --url "$NATS" >/dev/null
$S connection add mqtt mb --url "$MQTT" >/dev/null
$S connection add redis rb --url "$REDIS" >/dev/null
RES=$W/results
echo "# $(date -u +%FT%TZ) N=$N NM=$NM (fed at $MRATE/s) NH=$NH RUNS=$RUNS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# timed OUT CMD...: runs CMD with stdout in OUT (stderr in OUT.err); sets WALL (s) and CPU
# (user+sys s) of the whole process.
timed() {
  local out=$1 t0 t1; shift
  t0=$(date +%s%N)
  CPU=$( { TIMEFORMAT='%U %S'; time { "$@" >"$out" 2>"$out.err" || echo "$?" >"$out.rc"; }; } 2>&1 | awk '{printf "%.2f", $1 + $2}')
  t1=$(date +%s%N)
  if [ -e "$out.rc" ]; then
    echo "failed (exit $(cat "$out.rc")): $*"; head -c 2000 "$out" "$out.err"; rm -f "$out.rc"; exit 1
  fi
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b - a) / 1e9}')
}
field() { tr -d '\n ' <"$1" | grep -o "\"$2\":[0-9.]*" | head -1 | cut -d: -f2; }
# record WHAT WHO COUNT SECONDS: one result line (rate = COUNT / SECONDS), with WALL and CPU.
record() {
  local rate
  rate=$(awk -v n="$3" -v s="$4" 'BEGIN{printf "%.0f", (s > 0 ? n / s : 0)}')
  echo "$1|$2|$3|$4|$rate|$WALL|$CPU" >>"$RES"
  printf '  %-28s %-6s count %-7s %7ss  %8s msg/s  wall %6ss cpu %5ss\n' "$1" "$2" "$3" "$4" "$rate" "$WALL" "$CPU"
}
raw() { # WHAT OUT: from sluice-bench's JSON line
  record "$1" raw "$(field "$2" count)" "$(field "$2" seconds)"
}
sluice_capture() { # WHAT OUT
  record "$1" sluice "$(field "$2" captured)" "$(awk -v m="$(field "$2" elapsed_ms)" 'BEGIN{printf "%.3f", m / 1000}')"
}
sluice_replay() { # WHAT OUT: the whole replay (`elapsed_ms`) against both raw baselines, and
  # its sending side (`sending_ms`: first message handed over to the last report) against the
  # raw client sending the same messages (raw_same)
  local n
  n=$(($(field "$2" sent) + $(field "$2" unknown)))
  record "$1" sluice "$n" "$(awk -v m="$(field "$2" elapsed_ms)" 'BEGIN{printf "%.3f", m / 1000}')"
  record "$1-same" sluice "$n" "$(awk -v m="$(field "$2" elapsed_ms)" 'BEGIN{printf "%.3f", m / 1000}')"
  record "$1-same-sending" sluice "$n" "$(awk -v m="$(field "$2" sending_ms)" 'BEGIN{printf "%.3f", m / 1000}')"
  [ "$(field "$2" failed)" = 0 ] || { echo "replay failures:"; cat "$2"; }
}
raw_same() { # WHAT OUT: a raw publisher run with SLUICE_BENCH_HEADERS=1 (the same messages)
  record "$1-same" raw "$(field "$2" count)" "$(field "$2" seconds)"
  record "$1-same-sending" raw "$(field "$2" count)" "$(field "$2" seconds)"
}

echo "== NATS JetStream"
"$R" nats-stream "$NATS" "${ID}_in" "$ID.in"
timed "$W/o" "$R" nats-publish "$NATS" "$ID.in" "$N"
raw nats-load-publish "$W/o"
NLAKE=
for i in $(seq "$RUNS"); do
  timed "$W/o" "$R" nats-read "$NATS" "${ID}_in" "$N"
  raw nats-capture "$W/o"
  L=$W/nats-lake-$i
  timed "$W/o" env SLUICE_LAKE="$L" "$S" capture nb "${ID}_in" --from beginning --stop-at-end --no-decode --json
  sluice_capture nats-capture "$W/o"
  [ -n "$NLAKE" ] || NLAKE=$L
done
for i in $(seq "$RUNS"); do
  "$R" nats-stream "$NATS" "${ID}_r$i" "$ID.r$i"
  timed "$W/o" "$R" nats-publish "$NATS" "$ID.r$i" "$N"
  raw nats-replay "$W/o"
  "$R" nats-delete "$NATS" "${ID}_r$i"
  "$R" nats-stream "$NATS" "${ID}_h$i" "$ID.h$i"
  timed "$W/o" env SLUICE_BENCH_HEADERS=1 "$R" nats-publish "$NATS" "$ID.h$i" "$N"
  raw_same nats-replay "$W/o"
  "$R" nats-delete "$NATS" "${ID}_h$i"
  "$R" nats-stream "$NATS" "${ID}_s$i" "$ID.s$i"
  timed "$W/o" env SLUICE_LAKE="$NLAKE" "$S" replay "source = '${ID}_in'" --to "nb:$ID.s$i" --json
  sluice_replay nats-replay "$W/o"
  "$R" nats-delete "$NATS" "${ID}_s$i"
done

echo "== Redis Streams"
timed "$W/o" "$R" redis-xadd "$REDIS" "$ID:in" "$N"
raw redis-load-xadd "$W/o"
RLAKE=
for i in $(seq "$RUNS"); do
  timed "$W/o" "$R" redis-xread "$REDIS" "$ID:in" "$N"
  raw redis-capture "$W/o"
  L=$W/redis-lake-$i
  timed "$W/o" env SLUICE_LAKE="$L" "$S" capture rb "$ID:in" --from beginning --stop-at-end --no-decode --json
  sluice_capture redis-capture "$W/o"
  [ -n "$RLAKE" ] || RLAKE=$L
done
for i in $(seq "$RUNS"); do
  timed "$W/o" "$R" redis-xadd "$REDIS" "$ID:r$i" "$N"
  raw redis-replay "$W/o"
  redis-cli -p "$RPORT" del "$ID:r$i" >/dev/null
  timed "$W/o" env SLUICE_BENCH_HEADERS=1 "$R" redis-xadd "$REDIS" "$ID:h$i" "$N"
  raw_same redis-replay "$W/o"
  redis-cli -p "$RPORT" del "$ID:h$i" >/dev/null
  timed "$W/o" env SLUICE_LAKE="$RLAKE" "$S" replay "source = '$ID:in'" --to "rb:$ID:s$i" --json
  sluice_replay redis-replay "$W/o"
  redis-cli -p "$RPORT" del "$ID:s$i" >/dev/null
done

# MQTT keeps no history: each capture run is a subscriber (raw or Sluice) started first, then
# one raw publish of NM messages. The capture time runs from the publisher's start to the
# subscriber's exit (for Sluice: after its last durable write), the same clock for both.
wait_for() { # FILE PATTERN: up to 10 s
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
}
mqtt_run() { # QOS RUN WHO
  local q=$1 i=$2 who=$3 topic=bench/$ID/q$1/$2/$3 t0 t1 cpu
  if [ "$who" = raw ]; then
    ( { TIMEFORMAT='%U %S'; time "$R" mqtt-subscribe "$MQTT" "$topic" "$NM" 2 >"$W/sub" 2>"$W/sub.err"; } 2>"$W/sub.cpu" ) &
    wait_for "$W/sub.err" subscribed
  else
    L=$W/mqtt-lake-q$q-$i
    ( { TIMEFORMAT='%U %S'; time env SLUICE_LAKE="$L" "$S" capture mb "$topic" --max-messages "$NM" --duration 60s --no-decode --json >"$W/sub" 2>"$W/sub.err"; } 2>"$W/sub.cpu" ) &
    # Nothing says when Sluice's SUBSCRIBE is acknowledged: give it time.
    sleep 2
  fi
  local sub=$!
  t0=$(date +%s%N)
  timed "$W/pub" "$R" mqtt-publish "$MQTT" "$topic" "$NM" "$q" "$MRATE"
  local pwall=$WALL pcpu=$CPU
  wait "$sub"
  t1=$(date +%s%N)
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b - a) / 1e9}')
  CPU=$(awk '{printf "%.2f", $1 + $2}' "$W/sub.cpu")
  local n
  if [ "$who" = raw ]; then n=$(field "$W/sub" count); else n=$(field "$W/sub" captured); fi
  record "mqtt-q$q-capture" "$who" "$n" "$WALL"
  WALL=$pwall CPU=$pcpu
  record "mqtt-q$q-load-publish" "($who)" "$(field "$W/pub" count)" "$(field "$W/pub" seconds)"
  [ "$who" = sluice ] && [ "$i" = 1 ] && eval "MLAKE$q=$L"
  return 0
}
for q in 0 1; do
  echo "== MQTT QoS $q"
  for i in $(seq "$RUNS"); do
    mqtt_run "$q" "$i" raw
    mqtt_run "$q" "$i" sluice
  done
  lake=MLAKE$q
  for i in $(seq "$RUNS"); do
    timed "$W/o" "$R" mqtt-publish "$MQTT" "bench/$ID/replay-raw/$q" "$NM" "$q"
    raw "mqtt-q$q-replay" "$W/o"
    timed "$W/o" env SLUICE_BENCH_HEADERS=1 "$R" mqtt-publish "$MQTT" "bench/$ID/replay-raw/$q" "$NM" "$q"
    raw_same "mqtt-q$q-replay" "$W/o"
    # QoS 0 is never confirmed: replay counts it unknown and exits 1, as documented.
    timed "$W/o" sh -c '"$@" || [ $? = 1 ]' _ env SLUICE_LAKE="${!lake}" "$S" replay "" --to "mb:bench/$ID/replay/$q" --json
    sluice_replay "mqtt-q$q-replay" "$W/o"
  done
done

# HTTP: a Python ThreadingHTTPServer answering 204 (a Rust server would be faster; this one
# is the limit for both sides). Replay uses the connection's default concurrency 8; the
# baseline is wrk with 8 connections POSTing the same ~140-byte body.
echo "== HTTP"
HPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$HPORT" 2>/dev/null <<'EOF' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()
    do_OPTIONS = do_PUT = do_POST
    def log_message(self, *a):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
HTTP_PID=$!
for _ in $(seq 50); do up "$HPORT" && break; sleep 0.1; done
$S connection add http hb --url "http://127.0.0.1:$HPORT/" >/dev/null
python3 -c 'import sys; sys.stdout.buffer.write(b"x" * 140)' >"$W/body"
cat >"$W/post.lua" <<EOF
wrk.method = "POST"
wrk.body = string.rep("x", 140)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF
for i in $(seq "$RUNS"); do
  timed "$W/o" wrk -t2 -c8 -d8s -s "$W/post.lua" "http://127.0.0.1:$HPORT/"
  n=$(grep -o '[0-9]* requests in' "$W/o" | cut -d' ' -f1)
  secs=$(grep -o 'requests in [0-9.]*s' "$W/o" | grep -o '[0-9.]*')
  record http-replay "raw" "$n" "$secs"
  cat "$W/o" >>"$W/wrk.txt"
  timed "$W/o" env SLUICE_LAKE="$NLAKE" "$S" replay "source = '${ID}_in'" --limit "$NH" --to hb --json
  n=$(($(field "$W/o" sent) + $(field "$W/o" unknown)))
  record http-replay sluice "$n" "$(awk -v m="$(field "$W/o" elapsed_ms)" 'BEGIN{printf "%.3f", m / 1000}')"
done

echo "== medians (rate msg/s, wall s, cpu s; CPU is user+sys of the whole process)"
python3 - "$RES" <<'EOF'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    what, who, n, secs, rate, wall, cpu = line.strip().split("|")
    rows.setdefault(what, {}).setdefault(who, []).append((float(rate), float(wall), float(cpu), int(float(n or 0))))
print(f"{'what':24} {'who':8} {'runs':>4} {'count':>8} {'rate':>9} {'wall':>7} {'cpu':>6}  sluice/raw")
for what, by in rows.items():
    med = {w: (st.median(r[0] for r in v), st.median(r[1] for r in v), st.median(r[2] for r in v), min(r[3] for r in v), len(v)) for w, v in by.items()}
    for w, (rate, wall, cpu, n, runs) in med.items():
        ratio = f"{med['sluice'][0] / med['raw'][0]:.2f}" if w == "sluice" and "raw" in med and med["raw"][0] else ""
        print(f"{what:24} {w:8} {runs:>4} {n:>8} {rate:>9.0f} {wall:>7.2f} {cpu:>6.2f}  {ratio}")
EOF
