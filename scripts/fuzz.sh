#!/usr/bin/env bash
# make fuzz: builds Fuzz/CheckpointFuzz with libFuzzer (a build of its own, apart from
# .build/debug) and runs FUZZ_RUNS inputs per target from the committed seed corpus.
# New inputs go to .build/fuzz/corpus/TARGET, never into Fuzz/corpus; a crash leaves its
# input in .build/fuzz/crashes and fails the run.
#   FUZZ_RUNS=200000  FUZZ_TARGETS="images archive"  FUZZ_SECONDS (max per target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SWIFT=${SWIFT:-swift}
RUNS=${FUZZ_RUNS:-200000}
TARGETS=${FUZZ_TARGETS:-images archive}
BUILD=.build/fuzz
# Swift's backtracer would take the trap's signal first; libFuzzer's handler saves the input.
export SWIFT_BACKTRACE=enable=no

"$SWIFT" build --build-path "$BUILD" --product CheckpointFuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING
BIN=$BUILD/debug/CheckpointFuzz

mkdir -p "$BUILD/crashes"
status=0
for target in $TARGETS; do
    mkdir -p "$BUILD/corpus/$target"
    echo "fuzz $target: $RUNS runs over Fuzz/corpus/$target"
    args=(-runs="$RUNS" -max_len=262144 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1
          -artifact_prefix="$BUILD/crashes/$target-")
    [ -n "${FUZZ_SECONDS:-}" ] && args+=(-max_total_time="$FUZZ_SECONDS")
    if ! FUZZ_TARGET=$target "$BIN" "${args[@]}" "$BUILD/corpus/$target" "Fuzz/corpus/$target" \
            >"$BUILD/$target.log" 2>&1; then
        status=1
        echo "fuzz $target: FAILED, see $BUILD/$target.log and $BUILD/crashes" >&2
        grep -E '==ERROR|Fatal error|SUMMARY|Test unit written' "$BUILD/$target.log" | head -20 >&2 || true
    fi
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$BUILD/$target.log" || true
done
exit $status
