#!/usr/bin/env bash
# Chaos run: three Weir brokers (combined broker+controller) in network namespaces, idempotent
# acks=all producers and a consumer group (confluent-kafka), one seeded fault per round (kill -9,
# SIGSTOP, network cuts, packet loss, the quorum leader killed, a full disk), then a check that
# every acknowledged message was read back exactly once, in order, at its offset.
#   scripts/chaos.sh --rounds 50 --seed 7        (needs root; see docs/CHAOS.md)
# The last line of output is one JSON object; the exit status is non-zero on any loss,
# duplicate, reordering, phantom read or broker crash. Uses WEIR_BIN if set, else builds the
# release broker.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${WEIR_BIN:-}" ]; then
  cargo build --release -p weir --locked >&2
  WEIR_BIN="${CARGO_TARGET_DIR:-target}/release/weir"
fi
PY="${PYTHON:-python3}"
# Namespaces, links and mounts the run could not remove itself (it was killed) go on exit.
trap '"$PY" tests/chaos/topology.py --remove-stale || true' EXIT
"$PY" tests/chaos/run.py --weir-bin "$WEIR_BIN" "$@"
