#!/usr/bin/env bash
# Apache Kafka 4.4.0 on demand: the reference broker Weir is compared against.
#
#   scripts/kafka-reference.sh fetch                  Kafka's jars and runtime dependencies from
#                                                     Maven Central (cached in ~/.m2), copied to
#                                                     tests/kafka-reference/target/kafka-libs
#   scripts/kafka-reference.sh start DIR [key=value]  format a fresh KRaft data directory in DIR and
#                                                     start one combined-mode node (broker and
#                                                     controller) on a free loopback port; prints
#                                                     "bootstrap=127.0.0.1:PORT pid=PID dir=DIR"
#                                                     once it serves requests. key=value lines
#                                                     override server.properties.
#   scripts/kafka-reference.sh stop DIR               stop the node started in DIR, by its PID
#   scripts/kafka-reference.sh classpath              the class path of Kafka's jars
#
# Env: KAFKA_HEAP_OPTS (default -Xmx1G -Xms256m), KAFKA_READY_TIMEOUT_S (default 120),
#      KAFKA_CPUS (taskset CPU list for the JVM, e.g. 0, for benchmarks).
# Nothing is downloaded from anywhere but Maven Central, through Maven.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
REF="$REPO/tests/kafka-reference"
LIBS="$REF/target/kafka-libs"

die() { echo "kafka-reference: $*" >&2; exit 1; }

fetch() {
  # The marker names the pom's hash, so a changed pom fetches again.
  local stamp="$LIBS/.fetched-$(sha256sum "$REF/pom.xml" | cut -c1-16)"
  if [ -f "$stamp" ]; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's jars"
  rm -rf "$LIBS"
  mvn -q -B -f "$REF/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2
  touch "$stamp"
}

classpath() { echo "$LIBS/*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as Uuid.randomUuid()
# makes them (Kafka refuses ids starting with '-').
cluster_id() {
  local id
  while :; do
    id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
    case "$id" in -*) ;; *) echo "$id"; return ;; esac
  done
}

java_cmd() {
  local cpus="${KAFKA_CPUS:-}"
  local -a pre=()
  if [ -n "$cpus" ]; then pre=(taskset -c "$cpus"); fi
  # exec: the caller's PID (a subshell's, for the background node) becomes the JVM's, so the
  # node is stopped by that PID.
  # shellcheck disable=SC2086
  exec "${pre[@]}" java ${KAFKA_HEAP_OPTS:--Xmx1G -Xms256m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$REF/log4j2.properties" -cp "$(classpath)" "$@"
}

start() {
  local dir="${1:?usage: start DIR [key=value ...]}"; shift
  command -v java >/dev/null || die "a Java runtime (17+) is needed"
  fetch
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    die "a Kafka node already runs from $dir (pid $(cat "$dir/kafka.pid"))"
  fi
  rm -rf "$dir/data"
  local port cport
  port="$(free_port)"; cport="$(free_port)"
  while [ "$cport" = "$port" ]; do cport="$(free_port)"; done
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  local kv
  for kv in "$@"; do
    case "$kv" in *=*) echo "$kv" >> "$dir/server.properties" ;; *) die "not key=value: $kv" ;; esac
  done
  ( java_cmd -Dweir.log.level=WARN kafka.tools.StorageTool format \
    -t "$(cluster_id)" -c "$dir/server.properties" ) > "$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
  ( java_cmd kafka.Kafka "$dir/server.properties" ) > "$dir/kafka.log" 2>&1 < /dev/null &
  echo $! > "$dir/kafka.pid"
  local pid; pid="$(cat "$dir/kafka.pid")"
  local deadline=$(( $(date +%s) + ${KAFKA_READY_TIMEOUT_S:-120} ))
  # Ready: the node logged that it started (its broker is unfenced and its listener open).
  until grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -40 "$dir/kafka.log" >&2; die "Kafka exited before it was ready"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -40 "$dir/kafka.log" >&2; kill "$pid" 2>/dev/null || true
      die "Kafka not ready within ${KAFKA_READY_TIMEOUT_S:-120}s"
    fi
    sleep 0.2
  done
  echo "127.0.0.1:$port" > "$dir/bootstrap"
  echo "bootstrap=127.0.0.1:$port pid=$pid dir=$dir"
}

stop() {
  local dir="${1:?usage: stop DIR}"
  [ -f "$dir/kafka.pid" ] || die "no kafka.pid in $dir"
  local pid; pid="$(cat "$dir/kafka.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    # A controlled shutdown takes a few seconds; past 60 s it is killed.
    local i
    for i in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  fi
  rm -f "$dir/kafka.pid"
}

case "${1:-}" in
  fetch) fetch; echo "$LIBS" ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  classpath) fetch; classpath ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
