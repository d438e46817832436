#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time, one after another (the machine
# is shared). Seeds come from fuzz/corpus/<target>/ (read only); libFuzzer grows its corpus in
# fuzz/work/<target>/ (git-ignored). A crash stops the script and leaves the input in
# fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ (the stable `cargo test` runs those),
# fix the bug, run again.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, every target)
# Needs: rustup nightly, cargo install cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
rustup toolchain list | grep -q nightly || { echo "fuzz.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
for t in "${targets[@]}"; do
  mkdir -p "fuzz/work/$t" "fuzz/corpus/$t"
  echo "fuzz.sh: $t for ${secs}s" >&2
  cargo +nightly fuzz run -O "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -timeout=10 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)" || true
  if [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz.sh: $t CRASHED; inputs in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
echo "fuzz.sh: ${#targets[@]} targets ran ${secs}s each without a crash" >&2
