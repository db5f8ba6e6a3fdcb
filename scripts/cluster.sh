#!/usr/bin/env bash
# A Weir cluster on this machine: three nodes, each a broker and a controller (KRaft's combined
# mode), from config/kraft/server-{1,2,3}.properties, and optionally broker-only nodes joining
# the same quorum (config/kraft/broker-{4,5}.properties).
#
#   scripts/cluster.sh start        build (release), start nodes 1-3, wait until all serve
#   scripts/cluster.sh join 4       start broker-only node 4 (or 5) against the running quorum
#   scripts/cluster.sh status       which nodes run, then `weir-admin cluster describe`
#   scripts/cluster.sh stop         SIGTERM every node (broker-only ones first), wait for each
#
# Clients bootstrap from 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096 (nodes 1-3; 9098 and 9099
# for brokers 4 and 5). Data, logs and pid files go to ./weir-data (WEIR_CLUSTER_DIR changes it):
# node N keeps its partitions and metadata log in node-N/ (broker-N/ for broker-only nodes), its
# output in node-N.log, its pid in node-N.pid. The data stays across stop/start; delete the
# directory to start afresh.
#
# Each node runs WEIR_CORES pinned executors (default 1): the nodes share this machine's cores.
# docs/CLUSTER.md explains the KRaft settings in the config files.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${WEIR_CLUSTER_DIR:-$PWD/weir-data}"
CORES="${WEIR_CORES:-1}"
BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
# Bounded waits: a node serves once the quorum has a leader and it has registered and caught
# up; stopping includes a controlled shutdown (at most broker.session.timeout.ms, 9 s).
READY_TIMEOUT_S="${WEIR_READY_TIMEOUT_S:-60}"
STOP_TIMEOUT_S="${WEIR_STOP_TIMEOUT_S:-60}"

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

build() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is needed: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
  fi
  cargo build --release -p weir -p weir-tools --locked
}

# name config-file: the node's name (node-N or broker-N) from its config file.
node_name() {
  local stem
  stem="$(basename "$1" .properties)"
  echo "${stem/server/node}"
}

pid_of() {
  local f="$DIR/$1.pid"
  [ -f "$f" ] || return 1
  local pid
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

launch() {
  local config="$1" name
  name="$(node_name "$config")"
  if pid="$(pid_of "$name")"; then
    echo "$name already runs (pid $pid)"
    return 0
  fi
  mkdir -p "$DIR"
  "$BIN_DIR/weir" --config "$config" --override "log.dirs=$DIR/$name" \
    --override "weir.cores=$CORES" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  echo "$name started (pid $!, log $DIR/$name.log)"
}

# Waits until the node logs that it serves; fails with its log tail if it exits or takes too long.
wait_ready() {
  local name="$1" deadline=$((SECONDS + READY_TIMEOUT_S))
  while ! grep -q "Weir started" "$DIR/$name.log" 2>/dev/null; do
    if ! pid_of "$name" >/dev/null; then
      echo "$name exited; the end of its log:" >&2
      tail -n 20 "$DIR/$name.log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name does not serve after ${READY_TIMEOUT_S} s; the end of its log:" >&2
      tail -n 20 "$DIR/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "$name serves"
}

stop_node() {
  local name="$1" pid deadline
  pid="$(pid_of "$name")" || { rm -f "$DIR/$name.pid"; return 0; }
  kill -TERM "$pid"
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name (pid $pid) still runs ${STOP_TIMEOUT_S} s after SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$DIR/$name.pid"
  echo "$name stopped"
}

# Broker-only nodes first, then the voters one at a time, so each controlled shutdown still has
# a quorum to move its leaderships (the last voter alone times out of it and stops).
stop_all() {
  for f in "$DIR"/broker-*.pid; do
    if [ -e "$f" ]; then stop_node "$(basename "$f" .pid)"; fi
  done
  for n in 3 2 1; do stop_node "node-$n"; done
}

cmd="${1:-}"
case "$cmd" in
  start)
    build
    # All three voters start before any is awaited: none serves until the quorum has a leader.
    for n in 1 2 3; do launch "config/kraft/server-$n.properties"; done
    for n in 1 2 3; do
      if ! wait_ready "node-$n"; then
        echo "the cluster did not start; stopping the nodes that did" >&2
        stop_all
        exit 1
      fi
    done
    echo "bootstrap: 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    ;;
  join)
    id="${2:-4}"
    config="config/kraft/broker-$id.properties"
    [ -f "$config" ] || { echo "no $config (broker-only nodes: 4, 5)" >&2; exit 2; }
    [ -x "$BIN_DIR/weir" ] || build
    launch "$config"
    wait_ready "broker-$id"
    ;;
  status)
    any=""
    for f in "$DIR"/*.pid; do
      [ -e "$f" ] || continue
      name="$(basename "$f" .pid)"
      if pid="$(pid_of "$name")"; then
        echo "$name: running (pid $pid)"
        any=1
      else
        echo "$name: not running"
      fi
    done
    [ -n "$any" ] || { echo "no node runs (data in $DIR)"; exit 1; }
    "$BIN_DIR/weir-admin" cluster describe \
      --bootstrap-server 127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096
    ;;
  stop)
    stop_all
    ;;
  *)
    usage
    ;;
esac
