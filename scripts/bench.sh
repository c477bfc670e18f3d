#!/usr/bin/env bash
# Dump and restore times of ocicheckpoint against references measured in the same run:
# dd of the same page bytes, and criu when CRIU names a binary. `make bench` runs this
# with a release build.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${OCICHECKPOINT_BIN:-$ROOT/.build/release/ocicheckpoint}
# The reference CRIU 4.2 is timed in the same run: CRIU names a binary, CRIU=none skips
# it, and by default the shared build script makes (once) and names it.
CRIU=${CRIU:-}
BUILD_CRIU="$ROOT/../shared/reference/build-criu.sh"
if [ -z "$CRIU" ] && [ -f "$BUILD_CRIU" ]; then
    CRIU=$(bash "$BUILD_CRIU" 2>/dev/null | tail -n 1) || CRIU=""
    [ -x "$CRIU" ] || { echo "bench: CRIU 4.2 could not be built; its columns stay empty" >&2; CRIU=""; }
fi
[ "$CRIU" = none ] && CRIU=""
SHM=/dev/shm/ocb
WORK=$(mktemp -d /tmp/ocicheckpoint-bench.XXXXXX)
FAILED=0
ROWS=()
LIVE=()   # pids of the current workload tree, to clean up on exit

die() { echo "bench: $*" >&2; exit 1; }
now() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

[ -x "$BIN" ] || die "no ocicheckpoint binary at $BIN (run: make bench)"
[ "$(id -u)" = 0 ] || die "checkpoint/restore needs root"
if [ -n "$CRIU" ]; then
    command -v "$CRIU" >/dev/null || die "CRIU=$CRIU is not an executable"
fi

# PID 1 here reaps orphans only every ~2 s; a PID is free only once /proc/PID is gone.
wait_gone() {
    local pid
    for pid in "$@"; do
        for _ in $(seq 150); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        [ -e "/proc/$pid" ] && echo "bench: pid $pid still present after 15 s" >&2
    done
    return 0
}

kill_tree() {
    [ $# -gt 0 ] || return 0
    # every workload is a session leader, so its pid is also its process group
    kill -9 -- "-$1" 2>/dev/null || true
    kill -9 "$@" 2>/dev/null || true
    wait_gone "$@"
}

cleanup() {
    kill_tree "${LIVE[@]}"
    rm -rf "$SHM" "$WORK"
}
trap cleanup EXIT

for w in bench-mem bench-tree; do
    gcc -O2 -o "$WORK/$w" "$ROOT/scripts/$w.c"
done

# Starts a workload, waits for its ready file, sets LIVE to the tree's pids.
start_workload() {
    local kind=$1 arg=$2 ready="$WORK/ready"
    rm -f "$ready"
    "$WORK/$kind" "$arg" "$ready" </dev/null >/dev/null 2>&1 &
    local pid=$!
    # bash still reaps it, but says nothing when a dump kills it
    disown "$pid"
    for _ in $(seq 1200); do
        [ -s "$ready" ] && break
        [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || echo Z)" != Z ] \
            || die "$kind $arg exited before it was ready"
        sleep 0.1
    done
    [ -s "$ready" ] || die "$kind $arg not ready after 120 s"
    LIVE=("$pid")
    local p
    for p in /proc/[0-9]*; do
        [ "$(awk '{ print $4 }' "$p/stat" 2>/dev/null)" = "$pid" ] && LIVE+=("${p#/proc/}")
    done
    return 0
}

# A dump ends the tree (it kills the tasks); the next restore needs their PIDs free.
reap_after_dump() { wait_gone "${LIVE[@]}"; }

stat_value() { awk -v k="$1:" '$1 == k { print $2; exit }' "$2"; }

# One row: dump, restore, dd reference, then the same with criu; appends to ROWS.
bench_row() {
    local label=$1 kind=$2 arg=$3 log="$WORK/${1// /-}"
    local img="$SHM/img" stats="$WORK/stats" dump_s="fail" frozen="-" restore_s="-"
    local image_mib="-" dd_s="-" criu_dump="-" criu_restore="-"
    rm -rf "$SHM"; mkdir -p "$img"

    echo "== $label"
    start_workload "$kind" "$arg"
    local t0 t1
    t0=$(now)
    if "$BIN" dump -t "${LIVE[0]}" -D "$img" --display-stats -o "$log-dump.log" >"$stats"; then
        t1=$(now)
        dump_s=$(seconds $((t1 - t0)))
        reap_after_dump
        sed 's/^/   /' "$stats"
        local us
        us=$(stat_value frozen_time_us "$stats")
        [ -n "$us" ] && frozen=$(awk -v us="$us" 'BEGIN { printf "%.1f", us / 1000 }')
        image_mib=$(du -sb "$img" | awk '{ printf "%.1f", $1 / 1048576 }')

        t0=$(now)
        rm -f "$WORK/pid"
        if "$BIN" restore -D "$img" -d --pidfile "$WORK/pid"; then
            t1=$(now)
            restore_s=$(seconds $((t1 - t0)))
        else
            restore_s="fail"
            FAILED=1
        fi
        kill_tree $(cat "$WORK/pid" 2>/dev/null) "${LIVE[@]}"

        # reference: copy the same page bytes tmpfs to tmpfs
        if compgen -G "$img/pages-*.img" >/dev/null; then
            t0=$(now)
            cat "$img"/pages-*.img | dd of="$SHM/ref" bs=4M iflag=fullblock status=none
            t1=$(now)
            dd_s=$(seconds $((t1 - t0)))
            rm -f "$SHM/ref"
        fi
    else
        FAILED=1
        echo "   dump failed; last lines of its log:"
        sed 's/^/   /' "$log-dump.log" 2>/dev/null | tail -n 5 || true
        kill_tree "${LIVE[@]}"
    fi
    LIVE=()
    rm -rf "$img"

    if [ -n "$CRIU" ]; then
        local cimg="$SHM/criu"
        mkdir -p "$cimg"
        start_workload "$kind" "$arg"
        t0=$(now)
        if "$CRIU" dump -t "${LIVE[0]}" -D "$cimg" -o dump.log; then
            t1=$(now)
            criu_dump=$(seconds $((t1 - t0)))
            reap_after_dump
            t0=$(now)
            rm -f "$WORK/criu-pid"
            if "$CRIU" restore -D "$cimg" -d -o restore.log --pidfile "$WORK/criu-pid"; then
                t1=$(now)
                criu_restore=$(seconds $((t1 - t0)))
            else
                criu_restore="fail"
                tail -n 3 "$cimg/restore.log" 2>/dev/null | sed 's/^/   criu: /' || true
            fi
        else
            criu_dump="fail"
            tail -n 3 "$cimg/dump.log" 2>/dev/null | sed 's/^/   criu: /' || true
        fi
        kill_tree $(cat "$WORK/criu-pid" 2>/dev/null) "${LIVE[@]}"
        LIVE=()
        rm -rf "$cimg"
    fi

    ROWS+=("$(printf '%-14s | %7s | %9s | %9s | %9s | %8s | %11s | %14s' \
        "$label" "$dump_s" "$frozen" "$restore_s" "$image_mib" "$dd_s" "$criu_dump" "$criu_restore")")
}

# Images and the dd copy live in /dev/shm together, so a row needs twice its size there.
room_for() {
    local mib=$1 need avail
    need=$(( (2 * mib + 512) * 1048576 ))
    mkdir -p "$SHM"
    avail=$(df -B1 --output=avail "$SHM" | tail -n 1 | tr -d ' ')
    if [ "$avail" -lt "$need" ]; then
        echo "== skip ${mib} MiB: /dev/shm has $((avail / 1048576)) MiB free, needs $((need / 1048576)) MiB"
        return 1
    fi
}

for mib in 64 512 2048; do
    label="mem ${mib}MiB"
    [ "$mib" = 2048 ] && label="mem 2GiB"
    if room_for "$mib"; then bench_row "$label" bench-mem "$mib"; fi
done
bench_row "tree 1+50" bench-tree 50

echo
printf '%-14s | %7s | %9s | %9s | %9s | %8s | %11s | %14s\n' \
    workload "dump s" "frozen ms" "restore s" "image MiB" "dd ref s" "criu dump s" "criu restore s"
printf '%s\n' "---------------+---------+-----------+-----------+-----------+----------+-------------+---------------"
printf '%s\n' "${ROWS[@]}"
[ -n "$CRIU" ] || echo "(no CRIU binary: set CRIU=/path/to/criu to add criu's times)"

[ "$FAILED" = 0 ] || die "some ocicheckpoint dumps or restores failed (see above)"
