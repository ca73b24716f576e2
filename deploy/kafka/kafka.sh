#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) from Maven Central jars, so development and the integration
# tests need neither Docker nor a Kafka download. Usage: kafka.sh up|down|status|reset
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS  use that cluster instead: up/down/reset do nothing, status checks it
#   KAFKA_PORT               client port (default 9092)
#   KAFKA_CONTROLLER_PORT    KRaft controller port (default 9093)
#   KAFKA_DATA_DIR           storage, rendered config, log and pid file (default deploy/kafka/data)
#   KAFKA_START_TIMEOUT      seconds to wait for the broker to answer (default 60)
#   KAFKA_STOP_TIMEOUT       seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_CPUS               run the broker on these CPUs only (taskset list, e.g. 0), so a benchmark
#                            can keep the system it measures off the broker's cores
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LIB="$HERE/lib"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
BOOTSTRAP="$HOST:$PORT"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

DATA_DIR="${KAFKA_DATA_DIR:-$HERE/data}"
case "$DATA_DIR" in
  /*) ;;
  *) DATA_DIR="$PWD/$DATA_DIR" ;;
esac
STORAGE_DIR="$DATA_DIR/kraft-logs"
CONFIG="$DATA_DIR/server.properties"
CLUSTER_ID_FILE="$DATA_DIR/cluster-id"
PID_FILE="$DATA_DIR/kafka.pid"
LOG_FILE="$DATA_DIR/kafka.log"

# The JVM flags of bin/kafka-server-start.sh, with a heap small enough for a laptop next to the tests.
JAVA_OPTS=(
  -Xms256m -Xmx512m
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$HERE/log4j.properties"
)

# The repo's venv has confluent_kafka; a metadata request from it answers in milliseconds, where a
# JVM-based check would cost a second or two per attempt.
if [[ -x "$REPO/.venv/bin/python" ]]; then
  PYTHON="$REPO/.venv/bin/python"
else
  PYTHON="$(command -v python3 || true)"
fi

log() { printf 'kafka.sh: %s\n' "$*"; }
die() {
  printf 'kafka.sh: error: %s\n' "$*" >&2
  exit 1
}

now() { printf '%s' "${EPOCHREALTIME:-$(date +%s)}"; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

have_confluent_kafka() {
  [[ -n "$PYTHON" ]] && "$PYTHON" -c 'import confluent_kafka' >/dev/null 2>&1
}

# Exit status 0 when the cluster at $1 answers a metadata request within $2 seconds.
# With a pid as $3, keeps polling until the deadline and gives up early (status 3) if it dies.
wait_for_metadata() {
  local bootstrap="$1" timeout="$2" pid="${3:-}"
  if have_confluent_kafka; then
    "$PYTHON" - "$bootstrap" "$timeout" "$pid" 2>/dev/null <<'PY'
import os
import sys
import time

from confluent_kafka.admin import AdminClient

bootstrap, timeout, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + timeout
admin = AdminClient(
    {
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": 1000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
    }
)
while True:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        sys.exit(1)
    try:
        if admin.list_topics(timeout=min(1.0, remaining)).brokers:
            sys.exit(0)
    except Exception:
        pass
    if pid:
        try:
            os.kill(int(pid), 0)
        except OSError:
            sys.exit(3)
    time.sleep(0.2)
PY
    return $?
  fi
  local deadline=$((SECONDS + ${timeout%.*} + 1))
  while ((SECONDS < deadline)); do
    if timeout 15 java -cp "$LIB/*" "-Dlog4j.configuration=file:$HERE/log4j.properties" \
      kafka.admin.BrokerApiVersionsCommand --bootstrap-server "$bootstrap" >/dev/null 2>&1; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 3
    fi
    sleep 1
  done
  return 1
}

# Prints the pid of the broker this script started, if it is still that broker.
our_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guards against a recycled pid belonging to something else.
  ps -p "$pid" -o args= 2>/dev/null | grep -q "kafka.Kafka $CONFIG" || return 1
  printf '%s' "$pid"
}

port_in_use() {
  "${PYTHON:-python3}" - "$HOST" "$1" <<'PY'
import socket
import sys

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
PY
}

fetch_jars() {
  if [[ -d "$LIB" ]] && compgen -G "$LIB/*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null || die "no jars in $LIB and no mvn to fetch them (see pom.xml)"
  log "fetching Kafka jars into $LIB (once)"
  (cd "$HERE" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime)
}

render_config() {
  mkdir -p "$DATA_DIR"
  sed \
    -e "s|^log\.dirs=.*|log.dirs=$STORAGE_DIR|" \
    -e "s|^listeners=.*|listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT|" \
    -e "s|^advertised\.listeners=.*|advertised.listeners=PLAINTEXT://$HOST:$PORT|" \
    -e "s|^controller\.quorum\.voters=.*|controller.quorum.voters=1@$HOST:$CONTROLLER_PORT|" \
    "$HERE/server.properties" >"$CONFIG"
}

format_storage() {
  if [[ -f "$STORAGE_DIR/meta.properties" ]]; then
    return 0
  fi
  if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
    java "-Dlog4j.configuration=file:$HERE/log4j.properties" -cp "$LIB/*" \
      kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1 >"$CLUSTER_ID_FILE"
  fi
  log "formatting $STORAGE_DIR (cluster id $(cat "$CLUSTER_ID_FILE"))"
  java "-Dlog4j.configuration=file:$HERE/log4j.properties" -cp "$LIB/*" \
    kafka.tools.StorageTool format -t "$(cat "$CLUSTER_ID_FILE")" -c "$CONFIG" \
    >>"$LOG_FILE" 2>&1 || {
    tail -n 20 "$LOG_FILE" >&2
    die "formatting storage failed"
  }
}

external_cluster() {
  [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]
}

cmd_up() {
  if external_cluster; then
    log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set: using that cluster, starting nothing"
    return 0
  fi
  local pid
  if pid="$(our_pid)"; then
    if wait_for_metadata "$BOOTSTRAP" "$START_TIMEOUT" "$pid"; then
      log "already running (pid $pid) on $BOOTSTRAP"
      return 0
    fi
    die "broker pid $pid is running but does not answer on $BOOTSTRAP; see $LOG_FILE or run: $0 down"
  fi
  rm -f "$PID_FILE"

  local port
  for port in "$PORT" "$CONTROLLER_PORT"; do
    if port_in_use "$port"; then
      die "port $port on $HOST is already in use by another process; stop it, or set KAFKA_PORT / KAFKA_CONTROLLER_PORT (or KAFKA_BOOTSTRAP_SERVERS to use a running cluster)"
    fi
  done

  command -v java >/dev/null || die "java not found (Kafka 3.9 needs Java 11+)"
  local pin=()
  if [[ -n "${KAFKA_CPUS:-}" ]]; then
    command -v taskset >/dev/null || die "KAFKA_CPUS is set but taskset (util-linux) is not installed"
    taskset -c "$KAFKA_CPUS" true 2>/dev/null || die "KAFKA_CPUS=$KAFKA_CPUS is not a CPU list this machine has"
    pin=(taskset -c "$KAFKA_CPUS")
  fi
  fetch_jars
  render_config
  format_storage

  local started
  started="$(now)"
  printf '=== kafka.sh up %s ===\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$LOG_FILE"
  # setsid: the broker outlives the shell (or CI step) that started it, like a service would.
  nohup setsid "${pin[@]}" java "${JAVA_OPTS[@]}" -cp "$LIB/*" kafka.Kafka "$CONFIG" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "starting broker (pid $pid), log: $LOG_FILE"

  local rc=0
  wait_for_metadata "$BOOTSTRAP" "$START_TIMEOUT" "$pid" || rc=$?
  case "$rc" in
    0)
      log "Kafka is up on $BOOTSTRAP (pid $pid), started in $(elapsed_since "$started")s"
      ;;
    3)
      rm -f "$PID_FILE"
      printf '%s\n' "--- last lines of $LOG_FILE ---" >&2
      tail -n 40 "$LOG_FILE" >&2
      die "broker exited during startup"
      ;;
    *)
      printf '%s\n' "--- last lines of $LOG_FILE ---" >&2
      tail -n 40 "$LOG_FILE" >&2
      die "broker (pid $pid) did not answer on $BOOTSTRAP within ${START_TIMEOUT}s; it is left running, stop it with: $0 down"
      ;;
  esac
}

cmd_down() {
  if external_cluster; then
    log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set: using that cluster, stopping nothing"
    return 0
  fi
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  local started
  started="$(now)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "no exit ${STOP_TIMEOUT}s after SIGTERM, sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    local tries=0
    while kill -0 "$pid" 2>/dev/null && ((tries < 50)); do
      sleep 0.1
      tries=$((tries + 1))
    done
  fi
  rm -f "$PID_FILE"
  log "stopped (pid $pid) in $(elapsed_since "$started")s"
}

cmd_status() {
  if external_cluster; then
    if wait_for_metadata "$KAFKA_BOOTSTRAP_SERVERS" 10; then
      log "external cluster $KAFKA_BOOTSTRAP_SERVERS: answering"
      return 0
    fi
    log "external cluster $KAFKA_BOOTSTRAP_SERVERS: NOT answering"
    return 1
  fi
  local pid
  if pid="$(our_pid)"; then
    if wait_for_metadata "$BOOTSTRAP" 5; then
      log "running (pid $pid), bootstrap $BOOTSTRAP, answering; data $DATA_DIR"
    else
      log "running (pid $pid), bootstrap $BOOTSTRAP, NOT answering yet; log $LOG_FILE"
    fi
    return 0
  fi
  log "not running (bootstrap would be $BOOTSTRAP; data $DATA_DIR)"
  return 1
}

cmd_reset() {
  if external_cluster; then
    log "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set: using that cluster, deleting nothing"
    return 0
  fi
  cmd_down
  case "$DATA_DIR" in
    / | "$HOME" | "$REPO" | "$HERE") die "refusing to delete $DATA_DIR" ;;
  esac
  rm -rf "$DATA_DIR"
  log "deleted $DATA_DIR"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 up|down|status|reset" >&2
    exit 2
    ;;
esac
