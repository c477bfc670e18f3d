#!/usr/bin/env bash
# Dump and restore times of ocicheckpoint against CRIU 4.2 measured in the same run: a size
# series of processes full of random memory (with the machine's memcpy time for the same
# bytes), a 1+200 task tree, and a runc busybox container (checkpoint and restore through
# `runc --criu ENGINE`). `make bench` runs this with a release build.
#   BENCH_SIZES="64 512"  the memory sizes in MiB (default 64 to 4096)
#   CRIU=/path | none     the reference binary (default: the shared build script's)
#   BENCH_OUT=DIR         where the table, plot data, bench.svg and logs go
#   BENCH_LIVE_MIB=2048   the live-migration rows' workload (scripts/bench-live.sh)
# Fairness: each engine's run starts after writing and deleting a file of the image's size
# in /dev/shm (freshly allocated tmpfs pages are far slower to write here than pages freed a
# moment ago); the engines alternate which goes first, and each row keeps the best of two.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${OCICHECKPOINT_BIN:-$ROOT/.build/release/ocicheckpoint}
CRIU=${CRIU:-}
BUILD_CRIU="$ROOT/../shared/reference/build-criu.sh"
if [ -z "$CRIU" ] && [ -f "$BUILD_CRIU" ]; then
    CRIU=$(bash "$BUILD_CRIU" 2>/dev/null | tail -n 1) || CRIU=""
    [ -x "$CRIU" ] || { echo "bench: CRIU 4.2 could not be built; its columns stay empty" >&2; CRIU=""; }
fi
[ "$CRIU" = none ] && CRIU=""
SIZES=${BENCH_SIZES:-64 128 256 512 1024 2048 4096}
SHM=/dev/shm/ocb
WORK=$(mktemp -d /tmp/ocicheckpoint-bench.XXXXXX)
OUT=${BENCH_OUT:-$(mktemp -d /tmp/ocicheckpoint-bench-results.XXXXXX)}
FAILED=0
ROWS=()
RESULT=""
LOGS=""

source "$ROOT/scripts/bench-lib.sh"
source "$ROOT/scripts/bench-process.sh"
source "$ROOT/scripts/bench-container.sh"

[ -x "$BIN" ] || die "no ocicheckpoint binary at $BIN (run: make bench)"
[ "$(id -u)" = 0 ] || die "checkpoint/restore needs root"
if [ -n "$CRIU" ]; then
    command -v "$CRIU" >/dev/null || die "CRIU=$CRIU is not an executable"
fi

cleanup() {
    kill_tree "${LIVE[@]}"
    container_cleanup
    rm -rf "$SHM" "$WORK"
}
trap cleanup EXIT

mkdir -p "$OUT/logs"
for w in bench-mem bench-tree bench-memcpy; do
    gcc -O2 -o "$WORK/$w" "$ROOT/scripts/$w.c"
done

# One row: RUNNER (process_run or container_run) for each engine twice, CRIU first in the
# second round; sets PAIR to "ours-dump criu-dump ours-frozen criu-frozen ours-restore
# criu-restore image-MiB", each the best of its two.
pair() {
    local label=$1 runner=$2; shift 2
    local tag=${label// /-} o=() c=() r
    echo "== $label"
    for r in 1 2; do
        local order=(ours criu)
        [ "$r" = 2 ] && order=(criu ours)
        local who
        for who in "${order[@]}"; do
            LOGS="$OUT/logs/$tag-$r"
            if [ "$who" = ours ]; then
                "$runner" ours "$BIN" "$@"
                o+=("$RESULT")
            elif [ -n "$CRIU" ]; then
                "$runner" criu "$CRIU" "$@"
                c+=("$RESULT")
            else
                c+=("- - - -")
            fi
            echo "   $r $who: $RESULT (dump s, frozen ms, restore s, image MiB)"
        done
    done
    local o1=(${o[0]}) o2=(${o[1]}) c1=(${c[0]}) c2=(${c[1]})
    case "${o1[0]} ${o1[2]} ${o2[0]} ${o2[2]}" in *fail*) FAILED=1 ;; esac
    PAIR="$(best "${o1[0]}" "${o2[0]}") $(best "${c1[0]}" "${c2[0]}")"
    PAIR+=" $(best "${o1[1]}" "${o2[1]}") $(best "${c1[1]}" "${c2[1]}")"
    PAIR+=" $(best "${o1[2]}" "${o2[2]}") $(best "${c1[2]}" "${c2[2]}") ${o1[3]}"
}

FORMAT='%-16s %7s %8s | %7s %7s %5s | %7s %7s %5s | %7s %7s %5s\n'
add_row() {
    local label=$1 memcpy=$2 p=($3)
    ROWS+=("$(printf "$FORMAT" "$label" "${p[6]}" "$memcpy" \
        "${p[0]}" "${p[1]}" "$(ratio "${p[0]}" "${p[1]}")" \
        "${p[2]}" "${p[3]}" "$(ratio "${p[2]}" "${p[3]}")" \
        "${p[4]}" "${p[5]}" "$(ratio "${p[4]}" "${p[5]}")")")
}

# A row needs the workload, its image and its restored copy (or memcpy's two buffers) in
# memory at once, the image in /dev/shm.
room_for() {
    local mib=$1 avail shm
    avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
    mkdir -p "$SHM"
    shm=$(df -BM --output=avail "$SHM" | tail -n 1 | tr -dc 0-9)
    if [ "$avail" -lt $((2 * mib + 512)) ] || [ "$shm" -lt $((mib + 512)) ]; then
        echo "== skip ${mib} MiB: ${avail} MiB of memory and ${shm} MiB of /dev/shm free"
        return 1
    fi
}

echo "# MiB memcpy-s ours-dump criu-dump ours-restore criu-restore" >"$OUT/bench.dat"
for mib in $SIZES; do
    room_for "$mib" || continue
    read -r gbs memcpy < <("$WORK/bench-memcpy" "$mib")
    echo "== memcpy of $mib MiB: $memcpy s ($gbs GB/s)"
    pair "mem $mib MiB" process_run bench-mem "$mib" "$mib"
    add_row "mem $mib MiB" "$memcpy" "$PAIR"
    p=($PAIR)
    echo "$mib $memcpy ${p[0]} ${p[1]} ${p[4]} ${p[5]}" >>"$OUT/bench.dat"
done
pair "tree 1+200" process_run bench-tree 200 64
add_row "tree 1+200" - "$PAIR"
if command -v runc >/dev/null && [ -x /bin/busybox ]; then
    container_bundle "$WORK/bundle" >/dev/null
    pair "runc container" container_run "$WORK/bundle"
    add_row "runc container" - "$PAIR"
else
    echo "== skip the runc container: runc or /bin/busybox is missing"
fi

{
    echo
    printf "$FORMAT" "" "image" "memcpy" "dump" "" "" "frozen" "" "" "restore" "" ""
    printf "$FORMAT" workload MiB s "ours s" "criu s" "x" "ours ms" "criu ms" "x" "ours s" "criu s" "x"
    printf "$FORMAT" "" "" "" "" "" "" "" "" "" "" "" "" | tr ' |' '-+'
    printf '%s\n' "${ROWS[@]}"
    echo "x = ours / CRIU; each figure the best of two runs; a container's dump is runc checkpoint's wall time"
    [ -n "$CRIU" ] || echo "(no CRIU binary: set CRIU=/path/to/criu to add CRIU's times)"
} | tee "$OUT/bench.txt"
source "$ROOT/scripts/bench-live.sh"

if command -v gnuplot >/dev/null; then
    gnuplot -e "data='$OUT/bench.dat'; out='$OUT/bench.svg'" "$ROOT/scripts/bench.gnuplot" \
        && echo "plot: $OUT/bench.svg"
else
    echo "(no gnuplot: make deps installs gnuplot-nox for the plot)"
fi
source "$ROOT/scripts/bench-migrate.sh"
echo "results and logs: $OUT"

[ "$FAILED" = 0 ] || die "some ocicheckpoint dumps or restores failed (see above)"
