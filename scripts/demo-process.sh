#!/usr/bin/env bash
# Checkpoint a running counter, kill it, restore it, and show that it counts on from
# where it stopped. `make demo` builds everything first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${OCICHECKPOINT_BIN:-$ROOT/.build/debug/ocicheckpoint}
DIR=$(mktemp -d /tmp/ocicheckpoint-demo.XXXXXX)
PID=""
RESTORED=""

die() { echo "demo: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

gone() { [ ! -e "/proc/$1" ]; }

# PID 1 reaps the restored counter, here only every ~2 s; a PID is free once /proc/PID is gone.
stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 100); do gone "$pid" && return 0; sleep 0.1; done
    echo "demo: pid $pid still present after 10 s" >&2
}
cleanup() { stop "$RESTORED"; stop "$PID"; }
trap cleanup EXIT

[ -x "$BIN" ] || die "no ocicheckpoint binary at $BIN (run: make build)"
[ "$(id -u)" = 0 ] || die "checkpoint/restore needs root"

step "ocicheckpoint check"
"$BIN" check || echo "(check reported problems; trying anyway)"

step "start the workload: scripts/demo-counter.c, writing to $DIR/count"
gcc -O2 -o "$DIR/demo-counter" "$ROOT/scripts/demo-counter.c"
"$DIR/demo-counter" "$DIR/count" </dev/null >/dev/null 2>&1 &
PID=$!
# bash still reaps it, but says nothing when the dump kills it
disown "$PID"
sleep 1.5
gone "$PID" && die "the counter exited at once"
echo "pid $PID, counting:"
tail -n 3 "$DIR/count"

step "ocicheckpoint dump -t $PID -D $DIR/images"
"$BIN" dump -t "$PID" -D "$DIR/images" -o "$DIR/dump.log" -v4 \
    || die "dump failed; log: $DIR/dump.log"
# dump kills the tree once the images are written; restore needs the PID free again
stop "$PID"
PID=""
BEFORE=$(tail -n 1 "$DIR/count")
LINES=$(wc -l <"$DIR/count")
sleep 1
[ "$(wc -l <"$DIR/count")" = "$LINES" ] || die "the counter kept running after dump"
echo "the counter is gone; its last value was $BEFORE"
ls -l "$DIR/images"

step "ocicheckpoint restore -D $DIR/images -d --pidfile $DIR/pid"
"$BIN" restore -D "$DIR/images" -d --pidfile "$DIR/pid" || die "restore failed"
RESTORED=$(cat "$DIR/pid")
echo "restored as pid $RESTORED"
sleep 1.5
gone "$RESTORED" && die "the restored counter is not running"

AFTER=$(tail -n +"$((LINES + 1))" "$DIR/count")
[ -n "$AFTER" ] || die "the restored counter wrote nothing"
FIRST=$(head -n 1 <<<"$AFTER")
echo "last value before the dump: $BEFORE"
echo "first values after restore: $(head -n 5 <<<"$AFTER" | paste -sd' ')"

[ "$FIRST" = "$((BEFORE + 1))" ] \
    || die "the counter did not continue: expected $((BEFORE + 1)) after $BEFORE, got $FIRST"

step "done: the counter continued from $BEFORE to $FIRST; images and logs are in $DIR"
