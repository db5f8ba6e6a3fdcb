#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script and nothing else).
# It installs what its tests need, so it passes on a fresh Debian/Ubuntu machine with a Rust
# toolchain (rustup's cargo, rustfmt, clippy).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit and property tests"
cargo test --workspace --locked

step "benchmarks compile"
cargo bench --workspace --locked --no-run
