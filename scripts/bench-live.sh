# The live-migration rows of bench.sh (sourced after its table, or run alone): one
# bench-live workload of BENCH_LIVE_MIB MiB (default 2048) rewriting 8 MiB/s, ours only.
#   iterative: frozen ms of the final `dump --track-mem` after two pre-dumps, against a
#     full dump of the same workload in the same run (stats-dump frozen_time).
#   pre-dump overhead: the workload's own write rate (unpaced) while tracked between
#     pre-dumps, against untracked.
#   lazy restore: time until the restored workload runs again (its first report after the
#     restore) with `lazy-pages` + `restore --lazy-pages`, against a full restore.
# CRIU 4.2 pre-dumps only through soft-dirty bits, which this kernel does not have (its
# `criu check --feature mem_dirty_track`: "Dirty tracking is OFF"): its column is "-".
# Run alone: OCICHECKPOINT_BIN=.build/release/ocicheckpoint bash scripts/bench-live.sh

LIVE_MIB=${BENCH_LIVE_MIB:-2048}
LIVE_RATE=8

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    BIN=${OCICHECKPOINT_BIN:-$ROOT/.build/release/ocicheckpoint}
    SHM=/dev/shm/ocb-live
    WORK=$(mktemp -d /tmp/ocicheckpoint-bench-live.XXXXXX)
    OUT=${BENCH_OUT:-$WORK}
    FAILED=0
    source "$ROOT/scripts/bench-lib.sh"
    source "$ROOT/scripts/bench-process.sh"
    [ -x "$BIN" ] || die "no ocicheckpoint binary at $BIN"
    trap 'kill_tree "${LIVE[@]}"; rm -rf "$SHM" "$WORK"' EXIT
fi

# Starts bench-live: MIB, RATE MiB/s (0: unpaced); it reports in $WORK/ready.report.
start_live() {
    rm -f "$WORK/ready.report"
    start_workload bench-live "$1,$2"
}

# The report's fields: rounds, pages written, CLOCK_REALTIME ns of the last round.
report() {
    local line="0 0 0"
    read -r line <"$WORK/ready.report" 2>/dev/null || true
    echo "$line"
}

# Pages the workload writes per second, over 1 s.
write_rate() {
    local a b
    a=($(report)); sleep 1; b=($(report))
    awk -v p="$((b[1] - a[1]))" -v ns="$((b[2] - a[2]))" 'BEGIN { printf "%.0f", (ns > 0 ? p * 1e9 / ns : 0) }'
}

# Ms from START_NS until the workload reports again (it runs), "fail" after 30 s.
until_running() {
    local start=$1 r
    for _ in $(seq 30000); do
        r=($(report))
        [ "${r[2]}" -gt "$start" ] && { millis $((r[2] - start)); return 0; }
        sleep 0.001
    done
    echo fail
}

# ENGINE-ARGS... restored from DIR with -d: ms until the workload runs; then killed.
timed_restore() {
    local dir=$1; shift
    local t0 ms pidfile="$WORK/live.pid"
    rm -f "$pidfile"
    t0=$(now)
    if "$BIN" restore -D "$dir" -d --pidfile "$pidfile" "$@" >/dev/null 2>&1; then ms=$(until_running "$t0"); else ms=fail; fi
    [ "$ms" = fail ] && { tail -n 3 "$dir"/restore*.log 2>/dev/null | sed 's/^/   restore: /' >&2 || true; }
    kill_tree $(cat "$pidfile" 2>/dev/null)
    mkdir -p "$OUT/logs"
    local f
    for f in "$dir"/restore*.log "$dir"/lazy-pages.log; do [ -e "$f" ] && cp "$f" "$OUT/logs/live-${dir##*/}-${f##*/}"; done
    echo "$ms"
}

# ENGINE ARGS... with its log kept in $OUT/logs; a failure is shown and fails the bench.
engine() {
    local dir=$1; shift
    mkdir -p "$dir" "$OUT/logs"
    "$BIN" "$@" -o live.log -v4 >/dev/null 2>&1 || { FAILED=1; echo "   failed: $* (see $OUT/logs)" >&2; }
    cp "$dir/live.log" "$OUT/logs/live-${dir##*/}-$1.log" 2>/dev/null || true
}

live_rows() {
    local mib=$LIVE_MIB img=$SHM/live
    local avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
    if [ "$avail" -lt $((4 * mib + 512)) ]; then
        echo "== skip the live-migration rows: ${avail} MiB free, $((4 * mib + 512)) needed"
        return 0
    fi
    gcc -O2 -static -o "$WORK/bench-live" "$ROOT/scripts/bench-live.c"
    rm -rf "$img"

    # Each figure the best of two rounds, as bench.sh keeps its rows.
    local full=- final=- whole=- lazy=- r
    for r in 1 2; do
        echo "== live $r: $mib MiB rewriting $LIVE_RATE MiB/s: full dump, pre-dump, pre-dump, dump"
        rm -rf "$img"
        start_live "$mib" "$LIVE_RATE"
        local root=${LIVE[0]}
        engine "$img/full" dump -t "$root" -D "$img/full" -R
        sleep 1
        engine "$img/pre1" pre-dump -t "$root" -D "$img/pre1"
        sleep 1
        engine "$img/pre2" pre-dump -t "$root" -D "$img/pre2" --prev-images-dir ../pre1 --track-mem
        sleep 1
        engine "$img/final" dump -t "$root" -D "$img/final" --prev-images-dir ../pre2 --track-mem
        wait_gone "${LIVE[@]}"; LIVE=()
        echo "   frozen ms: full $(frozen_ms "$img/full"), pre-dumps $(frozen_ms "$img/pre1") $(frozen_ms "$img/pre2"), final $(frozen_ms "$img/final")"
        full=$(best "$full" "$(frozen_ms "$img/full")"); final=$(best "$final" "$(frozen_ms "$img/final")")
        # The iterative images must restore to a running workload, or the row means nothing.
        local check=$(timed_restore "$img/final" -o restore.log)
        echo "   the iterative images restore and run in $check ms"
        [ "$check" = fail ] && FAILED=1

        # The full dump's images, restored in full and lazily.
        local w l daemon
        w=$(timed_restore "$img/full" -o restore.log)
        rm -f "$img/full/lazy-pages.socket"
        "$BIN" lazy-pages -D "$img/full" -o lazy-pages.log >/dev/null 2>&1 &
        daemon=$!
        for _ in $(seq 500); do [ -S "$img/full/lazy-pages.socket" ] && break; sleep 0.01; done
        l=$(timed_restore "$img/full" --lazy-pages -o restore-lazy.log)
        kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true
        echo "   ms until running: full restore $w, lazy $l"
        case "$w $l" in *fail*) FAILED=1 ;; esac
        whole=$(best "$whole" "$w"); lazy=$(best "$lazy" "$l")
    done
    rm -rf "$img"

    echo "== live: write rate of an unpaced $mib MiB workload, untracked then tracked"
    start_live "$mib" 0
    local untracked tracked
    untracked=$(write_rate)
    engine "$img/tracked" pre-dump -t "${LIVE[0]}" -D "$img/tracked"
    tracked=$(write_rate)
    kill_tree "${LIVE[@]}"; LIVE=()
    rm -rf "$img"
    echo "   pages/s: untracked $untracked, tracked $tracked"

    local f='%-34s %10s %10s %7s %7s\n'
    {
        echo
        printf "$f" "live migration, ours ($mib MiB)" "ours" "against" "x" "criu"
        printf "$f" "" "" "" "" "" | tr ' ' '-'
        printf "$f" "iterative: final frozen ms" "$final" "$full" "$(ratio "$final" "$full")" "-"
        printf "$f" "pre-dump overhead: pages/s" "$tracked" "$untracked" "$(ratio "$tracked" "$untracked")" "-"
        printf "$f" "lazy restore: ms until running" "$lazy" "$whole" "$(ratio "$lazy" "$whole")" "-"
        echo "against: full dump / untracked / full restore of the same workload in this run; best of two"
        echo "rounds (the write rates: one); x = ours / against; criu \"-\": it pre-dumps with soft-dirty bits,"
        echo "which this kernel lacks"
    } | tee "$OUT/bench-live.txt"
}

live_rows
