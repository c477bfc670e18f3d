# Helpers shared by the bench scripts (sourced). Expects BIN, CRIU, SHM, WORK set.

die() { echo "bench: $*" >&2; exit 1; }
now() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
millis() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }

# PID 1 here reaps orphans only every ~2 s; a PID is free only once /proc/PID is gone.
wait_gone() {
    local pid
    for pid in "$@"; do
        for _ in $(seq 150); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
        [ -e "/proc/$pid" ] && echo "bench: pid $pid still present after 15 s" >&2
    done
    return 0
}

# On this VM, writing to tmpfs pages never used before is far slower than to pages freed a
# moment ago: whichever engine ran second would win. Before each engine's run, write and
# delete a file of the image's size, so both start from freed pages.
warm_shm() {
    local mib=$1
    mkdir -p "$SHM"
    dd if=/dev/zero of="$SHM/warm" bs=1M count="$mib" status=none
    rm -f "$SHM/warm"
}

# The smaller of two figures, either of which may be "-" or "fail".
best() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        na = (a ~ /^[0-9.]+$/); nb = (b ~ /^[0-9.]+$/)
        if (na && nb) print (a + 0 <= b + 0 ? a : b); else if (na) print a; else if (nb) print b; else print a }'
}

# ours / CRIU, or "-" when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}

# The frozen time in ms from the stats-dump (CRIU's dump_stats_entry) both engines write in
# the dump's work directory, "-" when there is none.
frozen_ms() {
    local img=$1/stats-dump
    [ -s "$img" ] || { echo "-"; return 0; }
    crit decode -i "$img" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)["entries"][0]["dump"]
    print("%.1f" % (d["frozen_time"] / 1000))
except Exception:
    print("-")'
}
