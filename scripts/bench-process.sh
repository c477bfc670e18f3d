# The process rows of bench.sh (sourced): a workload (bench-mem or bench-tree) dumped with
# `ENGINE dump` and restored with `ENGINE restore -d`, the same command line for both
# engines. Expects WORK (with the compiled workloads), SHM and bench-lib.sh.

LIVE=()   # pids of the current workload tree, to clean up on exit

kill_tree() {
    [ $# -gt 0 ] || return 0
    # every workload is a session leader, so its pid is also its process group
    kill -9 -- "-$1" 2>/dev/null || true
    kill -9 "$@" 2>/dev/null || true
    wait_gone "$@"
}

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

# One dump and restore of a fresh workload by ENGINE; sets RESULT to "dump-s frozen-ms
# restore-s image-MiB" and keeps the logs as $LOGS-NAME-*.log. The images and the warming
# file share /dev/shm.
process_run() {
    local name=$1 engine=$2 kind=$3 arg=$4 warm_mib=$5
    local img="$SHM/$name" pidfile="$WORK/$name.pid"
    local dump="fail" frozen="-" restore="-" image="-" t0 t1
    rm -rf "$img"; mkdir -p "$img"
    start_workload "$kind" "$arg"
    warm_shm "$warm_mib"
    t0=$(now)
    if "$engine" dump -t "${LIVE[0]}" -D "$img" -o dump.log >/dev/null 2>&1; then
        t1=$(now)
        dump=$(seconds $((t1 - t0)))
        # the dump killed the tree; the restore needs its PIDs free
        wait_gone "${LIVE[@]}"
        frozen=$(frozen_ms "$img")
        image=$(du -sb --exclude='*.log' "$img" | awk '{ printf "%.1f", $1 / 1048576 }')
        rm -f "$pidfile"
        t0=$(now)
        if "$engine" restore -D "$img" -d -o restore.log --pidfile "$pidfile" >/dev/null 2>&1; then
            t1=$(now)
            restore=$(seconds $((t1 - t0)))
        else
            restore="fail"
            tail -n 3 "$img/restore.log" 2>/dev/null | sed "s/^/   $name restore: /" >&2 || true
        fi
        kill_tree $(cat "$pidfile" 2>/dev/null) "${LIVE[@]}"
    else
        tail -n 3 "$img/dump.log" 2>/dev/null | sed "s/^/   $name dump: /" >&2 || true
        kill_tree "${LIVE[@]}"
    fi
    LIVE=()
    local f
    for f in "$img"/*.log; do [ -e "$f" ] && cp "$f" "$LOGS-$name-${f##*/}"; done
    rm -rf "$img"
    RESULT="$dump $frozen $restore $image"
}
