#!/usr/bin/env bash
# Builds Weir (release) and starts a single-node broker on 127.0.0.1:9092 with data in
# ./weir-data, using config/server.properties. Extra arguments are passed to the broker, e.g.
#   scripts/start.sh --override num.partitions=3
set -euo pipefail
cd "$(dirname "$0")/.."
# A Rust toolchain: rustup's in ~/.cargo if it is there, else installed with rustup (the
# minimal profile: rustc and cargo), which a fresh machine needs once.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  if ! command -v curl >/dev/null 2>&1; then
    echo "cargo is needed and curl is missing to install it: install curl, or Rust from https://rustup.rs" >&2
    exit 1
  fi
  echo "installing Rust with rustup (https://rustup.rs), minimal profile" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --release -p weir --locked
# Where cargo put the binary: ./target unless CARGO_TARGET_DIR says otherwise.
exec "${CARGO_TARGET_DIR:-target}/release/weir" --config config/server.properties "$@"
