#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script and nothing else).
# It installs what its tests need, so it passes on a fresh Debian/Ubuntu machine with a Rust
# toolchain (rustup's cargo, rustfmt, clippy).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lint (every target: the criterion benches and examples are compiled and checked here too)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the broker and weir-admin (integration tests and the bench tool's test drive them)"
cargo build -p weir -p weir-tools --locked
export WEIR_BIN="${WEIR_BIN:-$PWD/target/debug/weir}"
export WEIR_ADMIN_BIN="${WEIR_ADMIN_BIN:-$PWD/target/debug/weir-admin}"

step "unit and property tests"
cargo test --workspace --locked

step "fuzz targets: each for 5 s from the checked-in corpus (stable toolchain; fuzz/README.md)"
scripts/fuzz.sh --smoke

step "latency histograms: weir-bench produce, consume and e2e against the broker (verifies counts)"
cargo test -p weir-bench --locked --test against_broker -- --nocapture

step "Java and Maven (the Java client tests, Kafka's tools and the reference Kafka need them)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
fi
# Apache Kafka 4.4 (broker and tools) from Maven Central, cached in ~/.m2.
scripts/kafka-reference.sh fetch >/dev/null

step "Java client tests: kafka-clients 4.4 against the weir binary, then against Kafka 4.4"
MVN=(mvn -B -ntp -Dstyle.color=never -f tests/java/pom.xml)
timeout 900 "${MVN[@]}" test
# The same tests against the reference Kafka check that they expect what Kafka does.
KREF="$(mktemp -d)"
trap 'scripts/kafka-reference.sh stop "$KREF" 2>/dev/null || true; rm -rf "$KREF"' EXIT
scripts/kafka-reference.sh start "$KREF" >/dev/null
timeout 900 "${MVN[@]}" test -Dbootstrap="$(cat "$KREF/bootstrap")" -Dbroker.kind=kafka
scripts/kafka-reference.sh stop "$KREF"

step "integration tests (real clients and Kafka's tools against the weir binary; differential checks against Kafka 4.4)"
# kcat, confluent-kafka (librdkafka) and kafka-python drive target/debug/weir; see
# tests/integration/conftest.py. Installs its own tools on a fresh Debian/Ubuntu machine.
if ! command -v kcat >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat >/dev/null
fi
PY="${PYTHON:-python3}"
"$PY" -m pip install -q --disable-pip-version-check -r tests/integration/requirements.txt \
  || "$PY" -m pip install -q --disable-pip-version-check --break-system-packages \
       -r tests/integration/requirements.txt
# The bound covers a cold release build: test_startup.py runs the README's start command
# (scripts/start.sh builds with --release) from a fresh clone.
timeout 1800 \
  "$PY" -m pytest tests/integration -q --timeout 180 -p no:cacheprovider

step "chaos: the checker's tests and a short run (3 brokers in network namespaces, seeded faults; docs/CHAOS.md)"
# The run needs root for ip netns and nftables (network faults); without them it is skipped.
if [ "$(id -u)" -eq 0 ] && ! command -v nft >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
timeout 900 "$PY" -m pytest tests/chaos -q -p no:cacheprovider
