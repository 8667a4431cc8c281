#!/usr/bin/env bash
# Build every fuzz target and run each for SECONDS (default 20), starting from the
# committed corpus under fuzz/corpus/<target>/ (new finds go to a scratch copy, so the
# committed corpus only changes when someone minimises and commits it on purpose).
#   fuzz/run.sh [SECONDS]
# cargo-fuzz needs nightly features: on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-20}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
cargo fuzz build
status=0
for target in $(cargo fuzz list); do
    scratch="target/corpus-scratch/$target"
    mkdir -p "$scratch" "corpus/$target"
    echo "== $target (${SECONDS_PER_TARGET}s)"
    if ! cargo fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 2>&1 | tail -n 12; then
        echo "!! $target found a crash (see fuzz/artifacts/$target)"
        status=1
    fi
done
exit "$status"
