# The runc container rows of bench.sh (sourced): a busybox container checkpointed with
# `runc --criu ENGINE checkpoint` and restored with `runc --criu ENGINE restore`, each
# engine under its own runc --root. Wall times of both commands and the dump's frozen time.

CONTAINER_N=0

# A busybox-static bundle like the container tests': sh counting into /tmp/count. Its stdio
# is the container's own /dev/null (a bind mount runc names external): CRIU cannot dump a
# descriptor of a host file outside the container's mounts.
container_bundle() {
    local b=$1
    mkdir -p "$b/rootfs"/{bin,tmp,proc,sys,dev,etc}
    chmod 1777 "$b/rootfs/tmp"
    cp /bin/busybox "$b/rootfs/bin/"
    local a
    for a in $(/bin/busybox --list); do
        [ -e "$b/rootfs/bin/$a" ] || ln -s busybox "$b/rootfs/bin/$a"
    done
    (cd "$b" && runc spec)
    python3 - "$b/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "exec </dev/null >/dev/null 2>&1; i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done"]
c["root"] = {"path": "rootfs", "readonly": False}
json.dump(c, open(p, "w"), indent=2)
PY
}

# One `runc checkpoint` and `runc restore` of a fresh container by ENGINE; sets RESULT to
# "checkpoint-s frozen-ms restore-s -" and keeps runc's work directory (engine logs and
# stats) as $LOGS-NAME.
container_run() {
    local name=$1 engine=$2 bundle=$3
    local root="$WORK/runc-$name" id="ocb-$$-$name-$((CONTAINER_N += 1))"
    local img="$SHM/ctr-$name" work="$LOGS-$name"
    local rc=(runc --root "$root")
    local ckpt="fail" frozen="-" restore="-" t0 t1
    rm -rf "$img"; mkdir -p "$img" "$work" "$root"
    "${rc[@]}" run -d --bundle "$bundle" "$id" </dev/null >/dev/null 2>"$work/run.err" \
        || { echo "bench: runc run $id: $(tail -n 1 "$work/run.err")" >&2; RESULT="fail - - -"; return 0; }
    for _ in $(seq 50); do [ -s "$bundle/rootfs/tmp/count" ] && break; sleep 0.1; done
    warm_shm 64
    t0=$(now)
    if "${rc[@]}" --criu "$engine" checkpoint --image-path "$img" --work-path "$work" "$id" \
        >"$work/checkpoint.out" 2>&1; then
        t1=$(now)
        ckpt=$(seconds $((t1 - t0)))
        frozen=$(frozen_ms "$work")
        warm_shm 64
        t0=$(now)
        if "${rc[@]}" --criu "$engine" restore -d --bundle "$bundle" --image-path "$img" \
            --work-path "$work" "$id" </dev/null >/dev/null 2>"$work/restore.err"; then
            t1=$(now)
            restore=$(seconds $((t1 - t0)))
        else
            restore="fail"
            echo "bench: $name restore of $id: $(tail -n 1 "$work/restore.err")" >&2
            tail -n 3 "$work/restore.log" 2>/dev/null | sed "s/^/   $name: /" >&2 || true
        fi
    else
        echo "bench: $name checkpoint of $id: $(tail -n 1 "$work/checkpoint.out")" >&2
        tail -n 3 "$work/dump.log" 2>/dev/null | sed "s/^/   $name: /" >&2 || true
    fi
    "${rc[@]}" kill "$id" KILL >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        "${rc[@]}" state "$id" 2>/dev/null | grep -q '"status": "running"' || break
        sleep 0.1
    done
    "${rc[@]}" delete -f "$id" >/dev/null 2>&1 || true
    rm -rf "$img"
    RESULT="$ckpt $frozen $restore -"
}

# Containers an interrupted run left behind, under the bench's own runc roots only.
container_cleanup() {
    local root id
    for root in "$WORK"/runc-*; do
        [ -d "$root" ] || continue
        for id in $(runc --root "$root" list -q 2>/dev/null); do
            runc --root "$root" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
}
