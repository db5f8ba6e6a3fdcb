#!/usr/bin/env bash
# Builds and runs Weir's fuzz targets (fuzz/fuzz_targets/, libFuzzer through libfuzzer-sys).
#
#   scripts/fuzz.sh [--minutes N] [--jobs-note] [TARGET...]   run each TARGET (default: all) for
#                                                N minutes (default 30), one after another
#   scripts/fuzz.sh --smoke [--seconds S] [TARGET...]   CI: a dev build, then each target for S
#                                                seconds (default 5) from fuzz/corpus/<target>
#   scripts/fuzz.sh --list                       the targets
#
# New inputs go to fuzz/work/<target>/ (not checked in); the checked-in corpus fuzz/corpus/
# <target>/ is read, never written. Crashes, hangs and allocation-bound findings land in
# fuzz/artifacts/<target>/; a smoke run fails on any. Minimize a new corpus into the checked-in
# one with `-merge=1` (see fuzz/README.md).
#
# Why plain cargo and not `cargo fuzz`: the layout is cargo-fuzz's (so `cargo fuzz run TARGET`
# works where it is installed), but installing cargo-fuzz costs CI minutes on a fresh machine,
# and it adds only these flags. They are the sanitizer-coverage flags libFuzzer needs, all
# stable codegen options: no nightly toolchain and no AddressSanitizer (Weir's decoders are safe
# Rust; the allocation bound of fuzz/src/lib.rs stands in for the sanitizer allocator's limits).
# Overflow checks and debug assertions are on, as in cargo-fuzz's builds.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_DIR="$PWD/fuzz"

mode=long
minutes=30
seconds=5
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --smoke) mode=smoke; shift ;;
    --seconds) seconds="$2"; shift 2 ;;
    --list) mode=list; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

all_targets() { sed -n 's/^name = "\(.*\)"$/\1/p' "$FUZZ_DIR/Cargo.toml" | grep -v '^weir-fuzz$'; }
if [ "$mode" = list ]; then all_targets; exit 0; fi
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(all_targets); fi

TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cforce-frame-pointers=yes"
# --target keeps the flags off build scripts and proc macros, as cargo-fuzz does.
if [ "$mode" = smoke ]; then
  # A dev build (opt-level 1: libFuzzer needs some speed) keeps CI's build short.
  profile=dev; bin_dir="$FUZZ_DIR/target/$TRIPLE/debug"
  export CARGO_PROFILE_DEV_OPT_LEVEL=1 CARGO_PROFILE_DEV_DEBUG=0
else
  profile=release; bin_dir="$FUZZ_DIR/target/$TRIPLE/release"
fi
bin_args=()
for t in "${targets[@]}"; do bin_args+=(--bin "$t"); done
cargo build --manifest-path "$FUZZ_DIR/Cargo.toml" --locked --profile "$profile" \
  --target "$TRIPLE" "${bin_args[@]}"

failed=()
for t in "${targets[@]}"; do
  corpus="$FUZZ_DIR/corpus/$t"
  work="$FUZZ_DIR/work/$t"
  artifacts="$FUZZ_DIR/artifacts/$t"
  mkdir -p "$corpus" "$work" "$artifacts"
  if [ "$mode" = smoke ]; then
    secs="$seconds"
    work="$(mktemp -d)"
  else
    secs=$((minutes * 60))
  fi
  log="$FUZZ_DIR/work/$t.log"
  echo "== $t: ${secs}s from $(find "$corpus" -type f | wc -l) corpus inputs (log: $log)"
  # -rss_limit_mb backs the allocation bound up for memory that is touched without being
  # counted (none expected); -timeout makes a hang of 10 s a finding.
  set +e
  nice -n 10 "$bin_dir/$t" "$work" "$corpus" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^(#[0-9]+: cov|stat::number_of_executed_units|stat::peak_rss_mb|.*(ERROR|panicked|weir-fuzz))' "$log" \
    | grep -v 'INITED\|pulse' | tail -n 6 || true
  if [ "$mode" = smoke ]; then rm -rf "$work"; fi
  if [ $rc -ne 0 ]; then failed+=("$t"); echo "!! $t found something (exit $rc); see $log and $artifacts"; fi
done
if [ ${#failed[@]} -gt 0 ]; then echo "findings in: ${failed[*]}"; exit 1; fi
