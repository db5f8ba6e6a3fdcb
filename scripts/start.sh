#!/usr/bin/env bash
# Builds Weir (release) and starts a single-node broker on 127.0.0.1:9092 with data in
# ./weir-data, using config/server.properties. Extra arguments are passed to the broker, e.g.
#   scripts/start.sh --override num.partitions=3
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is needed: install Rust with rustup (https://rustup.rs) or your distribution's rustc/cargo packages" >&2
  exit 1
fi
cargo build --release -p weir --locked
# Where cargo put the binary: ./target unless CARGO_TARGET_DIR says otherwise.
exec "${CARGO_TARGET_DIR:-target}/release/weir" --config config/server.properties "$@"
