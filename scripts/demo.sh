#!/usr/bin/env bash
# The container flow end to end: start a busybox container with runc, checkpoint it into
# one archive, inspect the archive, restore it under a new name and show that it counts on
# from where it stopped. `make demo` builds everything first. (The process-tree flow
# without containers is scripts/demo-process.sh.)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${OCICHECKPOINT_BIN:-$ROOT/.build/debug/ocicheckpoint}
DIR=$(mktemp -d /tmp/ocicheckpoint-demo.XXXXXX)
ID=ocdemo-$$
NEW=$ID-restored

die() { echo "demo: $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }
cleanup() {
    for c in "$ID" "$NEW"; do runc delete -f "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

[ -x "$BIN" ] || die "no ocicheckpoint binary at $BIN (run: make build)"
[ "$(id -u)" = 0 ] || die "checkpoint/restore needs root"
command -v runc >/dev/null || die "runc is not installed (make deps)"

step "a busybox bundle in $DIR/bundle"
mkdir -p "$DIR/bundle/rootfs"/{bin,tmp,proc,sys,dev,etc}
chmod 1777 "$DIR/bundle/rootfs/tmp"
cp /bin/busybox "$DIR/bundle/rootfs/bin/"
for a in $(/bin/busybox --list); do [ -e "$DIR/bundle/rootfs/bin/$a" ] || ln -s busybox "$DIR/bundle/rootfs/bin/$a"; done
(cd "$DIR/bundle" && runc spec)
python3 - "$DIR/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done"]
c["root"] = {"path": "rootfs", "readonly": False}
json.dump(c, open(p, "w"), indent=2)
PY

step "runc run -d $ID (counting into /tmp/count inside the container)"
runc run -d --bundle "$DIR/bundle" "$ID" </dev/null >/dev/null 2>&1
sleep 2
echo "counting: $(tail -n 3 "$DIR/bundle/rootfs/tmp/count" | paste -sd' ')"

step "ocicheckpoint checkpoint --export $DIR/$ID.tar.zst $ID"
"$BIN" checkpoint --export "$DIR/$ID.tar.zst" "$ID" || die "checkpoint failed"
BEFORE=$(tail -n 1 "$DIR/bundle/rootfs/tmp/count")
echo "runc says: $(runc state "$ID" 2>/dev/null | grep -o '"status": "[a-z]*"' || echo 'gone')"
ls -lh "$DIR/$ID.tar.zst"
runc delete -f "$ID" >/dev/null 2>&1 || true

step "ocicheckpoint inspect $DIR/$ID.tar.zst --ps-tree --stats"
"$BIN" inspect "$DIR/$ID.tar.zst" --ps-tree --stats || die "inspect failed"

step "ocicheckpoint restore --import $DIR/$ID.tar.zst --name $NEW --bundle $DIR/restored"
"$BIN" restore --import "$DIR/$ID.tar.zst" --name "$NEW" --bundle "$DIR/restored" </dev/null >/dev/null \
    || die "restore failed; log: $DIR/restored/restore.log"
sleep 2
COUNT="$DIR/restored/rootfs/tmp/count"
AFTER=$(awk -v b="$BEFORE" 'NR > b' "$COUNT" | head -n 5 | paste -sd' ')
echo "last value before the checkpoint: $BEFORE"
echo "first values after the restore:   $AFTER"
[ "$(sed -n "$((BEFORE + 1))p" "$COUNT")" = "$((BEFORE + 1))" ] || die "the container did not count on from $BEFORE"
runc list | grep -E "^(ID|$NEW)"

step "done: $NEW continued from $BEFORE; everything is in $DIR"
